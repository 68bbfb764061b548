/**
 * Operators of the API: each has bearer tokens with a scope, `read` (every GET) or `admin` (changes too).
 * A token is 256 random bits; the store keeps only its SHA-256, so a copy of the store grants nothing.
 * A token given in the monitor configuration (`api.token`) acts as an admin named `config`; it must
 * carry at least 128 bits (32 characters or more).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';

export type TokenScope = 'read' | 'admin';
export const tokenScopes: readonly TokenScope[] = ['read', 'admin'];

export interface Principal {
  operator: string;
  scope: TokenScope;
  tokenId: string | null;
}

export interface TokenInfo {
  id: string;
  operator: string;
  scope: TokenScope;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

interface TokenRow {
  id: string;
  operator: string;
  scope: TokenScope;
  hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

const infoOf = (r: TokenRow): TokenInfo => ({
  id: r.id,
  operator: r.operator,
  scope: r.scope,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** Creates a token for `operator`; returns the token itself, which is shown once and never stored. */
export function createApiToken(
  db: Db,
  options: { operator: string; scope: TokenScope; now?: Date },
): { token: string; info: TokenInfo } {
  if (!/^[\w.@-]{1,64}$/.test(options.operator))
    throw new UnderstudyError('INVALID_ARGUMENT', `"${options.operator}" is not a valid operator name`, {
      hint: 'Use letters, digits, dot, @, dash or underscore (at most 64).',
    });
  if (!tokenScopes.includes(options.scope))
    throw new UnderstudyError('INVALID_ARGUMENT', `Scope "${String(options.scope)}" is not read or admin`);
  const id = randomBytes(6).toString('hex');
  const token = `us_${id}_${randomBytes(32).toString('base64url')}`;
  const createdAt = (options.now ?? new Date()).toISOString();
  db.prepare('INSERT INTO api_tokens (id, operator, scope, hash, created_at) VALUES (?, ?, ?, ?, ?)').run(
    id,
    options.operator,
    options.scope,
    hashToken(token),
    createdAt,
  );
  return {
    token,
    info: {
      id,
      operator: options.operator,
      scope: options.scope,
      createdAt,
      lastUsedAt: null,
      revokedAt: null,
    },
  };
}

export function listApiTokens(db: Db): TokenInfo[] {
  return (db.prepare('SELECT * FROM api_tokens ORDER BY created_at, id').all() as TokenRow[]).map(infoOf);
}

export function revokeApiToken(db: Db, id: string, now = new Date()): TokenInfo {
  const row = db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow | undefined;
  if (!row)
    throw new UnderstudyError('API_TOKEN_NOT_FOUND', `There is no API token "${id}"`, {
      hint: '`understudy token list` shows the tokens.',
    });
  if (!row.revoked_at)
    db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run(now.toISOString(), id);
  return infoOf(db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow);
}

/** The operator a presented token belongs to, or null for a missing, wrong or revoked token. */
export function authenticate(
  db: Db,
  presented: string | undefined,
  configToken: string | null,
): Principal | null {
  if (!presented) return null;
  if (configToken && tokenMatches(presented, configToken))
    return { operator: 'config', scope: 'admin', tokenId: null };
  const row = db
    .prepare('SELECT * FROM api_tokens WHERE hash = ? AND revoked_at IS NULL')
    .get(hashToken(presented)) as TokenRow | undefined;
  if (!row) return null;
  db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(new Date().toISOString(), row.id);
  return { operator: row.operator, scope: row.scope, tokenId: row.id };
}

/**
 * On the daemon's first start (no configured token, no token in the store) makes an admin token for
 * the operator `root` and writes it to `<stateDir>/api-token` (mode 0600). Returns that file, or null.
 */
export function ensureFirstToken(db: Db, stateDir: string, configToken: string | null): string | null {
  if (configToken) return null;
  const count = (db.prepare('SELECT COUNT(*) AS n FROM api_tokens').get() as { n: number }).n;
  if (count > 0) return null;
  const { token } = createApiToken(db, { operator: 'root', scope: 'admin' });
  const file = path.join(stateDir, 'api-token');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/** Compares a presented token with the configured one in constant time (hashes first, so lengths do not leak). */
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
