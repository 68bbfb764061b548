import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares a presented API token with the configured one in constant time (hashes first, so lengths do not leak). */
export function tokenMatches(presented: string | undefined, expected: string | null): boolean {
  if (!expected || !presented) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
