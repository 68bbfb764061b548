/**
 * Deciding whether an approval (a mail reply or a link) counts (SPEC §6, 1807). The checks, in
 * order: known sender, known challenge, challenge issued to this sender, not used, not expired,
 * the decision names only patches of the challenge, and the code matches (constant-time).
 */
import type { Db } from '../store/index.ts';
import { verifyApprovalCode } from './approval-code.ts';
import { consumeChallenge, findChallenge } from './challenges.ts';
import type { Decision } from './decision.ts';

/** Why an approval was refused. */
export type RejectionReason =
  | 'malformed' // the mail does not carry challenge, decision and code in the expected form
  | 'unknown-sender' // the sender is not a configured administrator
  | 'unauthenticated' // the receiving server's Authentication-Results do not authenticate the sender's domain
  | 'unknown-challenge' // no such challenge was ever issued
  | 'foreign' // the challenge was issued to another administrator, or the decision names patches outside it
  | 'reused' // the challenge was already used
  | 'expired' // the challenge is past its expiry
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
}

/** Verifies and, when valid, consumes the challenge (so the same approval never counts twice). */
export function verifyApproval(o: VerifyApprovalOptions): ApprovalVerdict {
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
    if (!valid) return reject('wrong-code', admin);
  }
  if (!consumeChallenge(o.db, { challenge: o.challenge, decision: o.decision, via: o.via, now: o.now }))
    return reject('reused', admin);
  return { ok: true, admin, challenge: o.challenge, decision: o.decision, patches };
}
