/**
 * Approval challenges: each notification mail to an administrator carries a fresh random
 * challenge bound (in the store) to that administrator and that exact set of patches. A challenge
 * is accepted once, then it is used; it expires after the configured time.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/index.ts';
import { canonicalDecision, type Decision } from './decision.ts';

/**
 * open: waiting for a decision; used: a decision was accepted (any further use is a replay);
 * locked: too many wrong codes were tried, no code is accepted any more.
 */
export type ChallengeState = 'open' | 'used' | 'locked';

export interface Challenge {
  challenge: string;
  admin: string;
  patches: string[];
  createdAt: string;
  expiresAt: string;
  state: ChallengeState;
  usedAt: string | null;
  decision: string | null;
  failedAttempts: number;
}

interface Row {
  challenge: string;
  admin: string;
  patches: string;
  created_at: string;
  expires_at: string;
  state: 'open' | 'used';
  used_at: string | null;
  decision: string | null;
  failed_attempts: number;
  locked_at: string | null;
}

const toChallenge = (r: Row): Challenge => ({
  challenge: r.challenge,
  admin: r.admin,
  patches: JSON.parse(r.patches) as string[],
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  state: r.state === 'open' && r.locked_at ? 'locked' : r.state,
  usedAt: r.used_at,
  decision: r.decision,
  failedAttempts: r.failed_attempts,
});

/** Counts a wrong code; locks the challenge when `limit` wrong codes were tried. Returns the new count. */
export function recordFailedAttempt(
  db: Db,
  options: { challenge: string; limit: number; now: Date },
): number {
  db.prepare('UPDATE approval_challenges SET failed_attempts = failed_attempts + 1 WHERE challenge = ?').run(
    options.challenge,
  );
  db.prepare(
    'UPDATE approval_challenges SET locked_at = ? WHERE challenge = ? AND locked_at IS NULL AND failed_attempts >= ?',
  ).run(options.now.toISOString(), options.challenge, options.limit);
  return (findChallenge(db, options.challenge) as Challenge).failedAttempts;
}

export function issueChallenge(
  db: Db,
  options: { admin: string; patches: readonly string[]; ttlMs: number; now: Date },
): Challenge {
  const challenge = randomBytes(20).toString('hex');
  db.prepare(
    'INSERT INTO approval_challenges (challenge, admin, patches, created_at, expires_at, state) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(
    challenge,
    options.admin,
    JSON.stringify([...new Set(options.patches)].sort()),
    options.now.toISOString(),
    new Date(options.now.getTime() + options.ttlMs).toISOString(),
    'open',
  );
  return findChallenge(db, challenge) as Challenge;
}

export function findChallenge(db: Db, challenge: string): Challenge | undefined {
  const row = db.prepare('SELECT * FROM approval_challenges WHERE challenge = ?').get(challenge) as
    Row | undefined;
  return row ? toChallenge(row) : undefined;
}

/** Marks the challenge used; false when it was not open any more (a concurrent or repeated use). */
export function consumeChallenge(
  db: Db,
  options: { challenge: string; decision: Decision; via: string; now: Date },
): boolean {
  const result = db
    .prepare(
      "UPDATE approval_challenges SET state = 'used', used_at = ?, decision = ?, via = ? WHERE challenge = ? AND state = 'open' AND locked_at IS NULL",
    )
    .run(options.now.toISOString(), canonicalDecision(options.decision), options.via, options.challenge);
  return result.changes === 1;
}

export function listChallenges(db: Db, filter: { state?: ChallengeState } = {}): Challenge[] {
  const rows = db.prepare('SELECT * FROM approval_challenges ORDER BY created_at').all() as Row[];
  return rows.map(toChallenge).filter((c) => filter.state === undefined || c.state === filter.state);
}
