/**
 * Deciding whether an approval (a mail reply, a link or an API call) counts (SPEC §6, 1807). The
 * checks, in order: known sender, known challenge, challenge issued to this sender, not used, not
 * locked, not expired, the decision names only patches of the challenge, and the code matches
 * (constant-time). A wrong code counts against the challenge; after `maxFailedAttempts` the challenge
 * is locked for good. Every attempt, accepted or not, is written to `approval_attempts`. All of it —
 * checks, counting, audit, consuming the challenge and queueing the accepted approval for the patch
 * run — is one SQLite transaction.
 */
import type { Db } from '../store/index.ts';
import { verifyApprovalCode } from './approval-code.ts';
import { consumeChallenge, findChallenge, recordFailedAttempt } from './challenges.ts';
import { canonicalDecision, parseDecision, type Decision } from './decision.ts';

/** Wrong codes tried against one challenge before it is locked. */
export const DEFAULT_MAX_FAILED_ATTEMPTS = 5;

/** Why an approval was refused. */
export type RejectionReason =
  | 'malformed' // the mail does not carry challenge, decision and code in the expected form
  | 'unknown-sender' // the sender is not a configured administrator
  | 'unauthenticated' // the receiving server's Authentication-Results do not authenticate the sender's domain
  | 'unknown-challenge' // no such challenge was ever issued
  | 'foreign' // the challenge was issued to another administrator, or the decision names patches outside it
  | 'reused' // the challenge was already used
  | 'expired' // the challenge is past its expiry
  | 'locked' // too many wrong codes were tried against the challenge
  | 'wrong-code'; // the code does not match (wrong secret, decision, challenge or too old)

export interface ApprovalAdmin {
  name: string;
  email: string;
  secret: Buffer;
}

export type ApprovalVerdict =
  | { ok: true; admin: ApprovalAdmin; challenge: string; decision: Decision; patches: string[] }
  | { ok: false; reason: RejectionReason; message: string; admin?: ApprovalAdmin };

export const rejectionText: Record<RejectionReason, string> = {
  malformed: 'the reply does not contain a challenge, a decision and a code in the expected form',
  'unknown-sender': 'the sender is not a configured administrator',
  unauthenticated:
    "the mail server's Authentication-Results do not show the sender's domain authenticated (DKIM/DMARC)",
  'unknown-challenge': 'the challenge is unknown',
  foreign: 'the challenge was issued to another administrator or does not cover the patches named',
  reused: 'the challenge has already been used',
  expired: 'the challenge has expired',
  locked: 'too many wrong codes were tried for this challenge; it is locked (wait for the next notification)',
  'wrong-code': 'the code is wrong (check the challenge, the decision and your secret) or too old',
};

export interface VerifyApprovalOptions {
  db: Db;
  admins: readonly ApprovalAdmin[];
  /** Lowercase address of the sender (mail) or the admin name bound in a signed link. */
  sender: { email?: string; name?: string };
  challenge: string;
  decision: Decision;
  /** The OCRA response; null for a signed link (the link's signature stands in for it). */
  code: string | null;
  via: 'mail' | 'link' | 'api';
  now: Date;
  codeWindowMinutes: number;
  /** Wrong codes before the challenge is locked (default 5). */
  maxFailedAttempts?: number;
}

/** Verifies and, when valid, consumes the challenge (so the same approval never counts twice). */
export function verifyApproval(o: VerifyApprovalOptions): ApprovalVerdict {
  return o.db.transaction(() => {
    const verdict = checkApproval(o);
    o.db
      .prepare(
        'INSERT INTO approval_attempts (at, challenge, sender, via, outcome, reason) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(
        o.now.toISOString(),
        o.challenge.slice(0, 64),
        (o.sender.email ?? o.sender.name ?? '').slice(0, 320),
        o.via,
        verdict.ok ? 'accepted' : 'rejected',
        verdict.ok ? null : verdict.reason,
      );
    if (verdict.ok)
      o.db
        .prepare(
          'INSERT INTO accepted_approvals (challenge, admin, decision, patches, via, accepted_at) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(
          verdict.challenge,
          verdict.admin.name,
          canonicalDecision(verdict.decision),
          JSON.stringify(verdict.patches),
          o.via,
          o.now.toISOString(),
        );
    return verdict;
  })();
}

function checkApproval(o: VerifyApprovalOptions): ApprovalVerdict {
  const reject = (reason: RejectionReason, admin?: ApprovalAdmin): ApprovalVerdict => ({
    ok: false,
    reason,
    message: rejectionText[reason],
    admin,
  });
  const admin = o.admins.find((a) =>
    o.sender.email ? a.email === o.sender.email.toLowerCase() : a.name === o.sender.name,
  );
  if (!admin) return reject('unknown-sender');
  const challenge = findChallenge(o.db, o.challenge);
  if (!challenge) return reject('unknown-challenge', admin);
  if (challenge.admin !== admin.name) return reject('foreign', admin);
  if (challenge.state === 'used') return reject('reused', admin);
  if (challenge.state === 'locked') return reject('locked', admin);
  if (Date.parse(challenge.expiresAt) <= o.now.getTime()) return reject('expired', admin);
  let patches = challenge.patches;
  if (o.decision.kind === 'approve') {
    if (o.decision.patches.some((p) => !challenge.patches.includes(p))) return reject('foreign', admin);
    patches = o.decision.patches;
  }
  if (o.decision.kind === 'reject') patches = challenge.patches;
  if (o.code !== null) {
    const valid = verifyApprovalCode({
      secret: admin.secret,
      challenge: o.challenge,
      decision: o.decision,
      code: o.code,
      at: o.now,
      pastSteps: o.codeWindowMinutes,
    });
    if (!valid) {
      // The attempt that reaches the limit locks the challenge; this one is still a wrong code.
      recordFailedAttempt(o.db, {
        challenge: o.challenge,
        limit: o.maxFailedAttempts ?? DEFAULT_MAX_FAILED_ATTEMPTS,
        now: o.now,
      });
      return reject('wrong-code', admin);
    }
  }
  if (!consumeChallenge(o.db, { challenge: o.challenge, decision: o.decision, via: o.via, now: o.now }))
    return reject('reused', admin);
  return { ok: true, admin, challenge: o.challenge, decision: o.decision, patches };
}

/** An approval accepted (its challenge consumed) whose decision has not been applied yet. */
export interface PendingApproval {
  challenge: string;
  admin: string;
  decision: Decision;
  patches: string[];
  via: 'mail' | 'link' | 'api';
}

/** Accepted approvals not applied yet, oldest first (after a crash: the ones to apply now). */
export function pendingApprovals(db: Db): PendingApproval[] {
  const rows = db
    .prepare('SELECT * FROM accepted_approvals WHERE applied_at IS NULL ORDER BY accepted_at, challenge')
    .all() as { challenge: string; admin: string; decision: string; patches: string; via: string }[];
  return rows.map((r) => ({
    challenge: r.challenge,
    admin: r.admin,
    decision: parseDecision(r.decision),
    patches: JSON.parse(r.patches) as string[],
    via: r.via as PendingApproval['via'],
  }));
}

export function markApprovalApplied(db: Db, challenge: string, now: Date): void {
  db.prepare('UPDATE accepted_approvals SET applied_at = ? WHERE challenge = ? AND applied_at IS NULL').run(
    now.toISOString(),
    challenge,
  );
}
