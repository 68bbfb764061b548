/**
 * Approval challenges: each notification mail to an administrator carries a fresh random
 * challenge bound (in the store) to that administrator and that exact set of patches. A challenge
 * is accepted once, then it is used; it expires after the configured time.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/index.ts';
import { canonicalDecision, type Decision } from './decision.ts';

/** open: waiting for a decision; used: a decision was accepted (any further use is a replay). */
export type ChallengeState = 'open' | 'used';

export interface Challenge {
  challenge: string;
  admin: string;
  patches: string[];
  createdAt: string;
  expiresAt: string;
  state: ChallengeState;
  usedAt: string | null;
  decision: string | null;
}

interface Row {
  challenge: string;
  admin: string;
  patches: string;
  created_at: string;
  expires_at: string;
  state: ChallengeState;
  used_at: string | null;
  decision: string | null;
}

const toChallenge = (r: Row): Challenge => ({
  challenge: r.challenge,
  admin: r.admin,
  patches: JSON.parse(r.patches) as string[],
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  state: r.state,
  usedAt: r.used_at,
  decision: r.decision,
});

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
      "UPDATE approval_challenges SET state = 'used', used_at = ?, decision = ?, via = ? WHERE challenge = ? AND state = 'open'",
    )
    .run(options.now.toISOString(), canonicalDecision(options.decision), options.via, options.challenge);
  return result.changes === 1;
}

export function listChallenges(db: Db, filter: { state?: ChallengeState } = {}): Challenge[] {
  const rows = db
    .prepare('SELECT * FROM approval_challenges WHERE (@state IS NULL OR state = @state) ORDER BY created_at')
    .all({ state: filter.state ?? null }) as Row[];
  return rows.map(toChallenge);
}
