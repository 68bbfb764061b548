/**
 * Signed, expiring approval links: `<publicUrl>/v1/approvals/link?t=<token>`, token =
 * base64url(JSON {c: challenge, d: decision, a: admin, e: expiry ms}) "." base64url(HMAC-SHA256).
 * The link stands in for the code, so it is bound to the challenge, the decision and the
 * administrator and, like a code, is accepted once (the challenge is consumed).
 */
import { createHmac } from 'node:crypto';
import { codesEqual } from './ocra.ts';
import { canonicalDecision, parseDecision, type Decision } from './decision.ts';

export interface LinkClaims {
  challenge: string;
  decision: Decision;
  admin: string;
  expiresAt: number;
}

function mac(secret: Buffer, payload: string): string {
  return createHmac('sha256', secret).update(`understudy-link/1.${payload}`).digest('base64url');
}

export function signApprovalLink(secret: Buffer, claims: LinkClaims): string {
  const payload = Buffer.from(
    JSON.stringify({
      c: claims.challenge,
      d: canonicalDecision(claims.decision),
      a: claims.admin,
      e: claims.expiresAt,
    }),
  ).toString('base64url');
  return `${payload}.${mac(secret, payload)}`;
}

/** Returns the claims of a well-signed, unexpired token, or a reason. */
export function verifyApprovalLink(
  secret: Buffer,
  token: string,
  now: Date,
): { ok: true; claims: LinkClaims } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' } {
  const [payload, signature, extra] = token.split('.');
  if (!payload || !signature || extra !== undefined) return { ok: false, reason: 'malformed' };
  if (!codesEqual(mac(secret, payload), signature)) return { ok: false, reason: 'bad-signature' };
  try {
    const raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      c: string;
      d: string;
      a: string;
      e: number;
    };
    const decision = raw.d.startsWith('approve:')
      ? parseDecision(`approve: ${raw.d.slice('approve:'.length)}`)
      : parseDecision(raw.d);
    if (raw.e <= now.getTime()) return { ok: false, reason: 'expired' };
    return { ok: true, claims: { challenge: raw.c, decision, admin: raw.a, expiresAt: raw.e } };
  } catch {
    return { ok: false, reason: 'malformed' };
  }
}
