/**
 * The approval code (SPEC §6, 1807): the monitor mails a random challenge bound to a set of patches;
 * the administrator's terminal derives a code from the challenge, the decision and the
 * administrator's own secret with OATH OCRA (RFC 6287, suite OCRA-1:HOTP-SHA256-8:QH64-T1M);
 * the monitor derives the same and only a match counts.
 *
 * The OCRA question is sha256("understudy-approval/1\n" + challenge + "\n" + canonical decision),
 * so a code is bound to this challenge (hence this patch set) and to this decision; the T1M time
 * input makes a code computed now useless some minutes later.
 */
import { createHash } from 'node:crypto';
import { UnderstudyError } from '../core/index.ts';
import { codesEqual, generateOcra, ocraTimeSteps, parseOcraSuite } from './ocra.ts';
import { canonicalDecision, type Decision } from './decision.ts';

export const approvalSuite = parseOcraSuite('OCRA-1:HOTP-SHA256-8:QH64-T1M');

/** Challenges are 20 random bytes in hex. */
export const challengePattern = /^[0-9a-f]{40}$/;

export function approvalQuestion(challenge: string, decision: Decision): string {
  return createHash('sha256')
    .update(`understudy-approval/1\n${challenge}\n${canonicalDecision(decision)}`)
    .digest('hex');
}

/** An administrator secret: hex, at least 16 bytes (32 recommended). */
export function parseAdminSecret(hex: string, whose: string): Buffer {
  const clean = hex.trim();
  if (!/^([0-9a-fA-F]{2}){16,}$/.test(clean)) {
    throw new UnderstudyError(
      'CONFIG_INVALID',
      `The approval secret of ${whose} must be at least 32 hex digits (16 bytes)`,
      {
        hint: 'Generate one with: openssl rand -hex 32',
      },
    );
  }
  return Buffer.from(clean, 'hex');
}

export interface ComputeCodeOptions {
  secret: Buffer;
  challenge: string;
  decision: Decision;
  at?: Date;
}

export function computeApprovalCode(options: ComputeCodeOptions): string {
  if (!challengePattern.test(options.challenge)) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `"${options.challenge.slice(0, 60)}" is not an understudy challenge (40 hex digits)`,
    );
  }
  return generateOcra(approvalSuite, options.secret, {
    question: approvalQuestion(options.challenge, options.decision),
    timeSteps: ocraTimeSteps(approvalSuite, options.at ?? new Date()),
  });
}

export interface VerifyCodeOptions extends ComputeCodeOptions {
  code: string;
  /** Accept codes computed up to this many minutes before `at` (mail takes time), default 30. */
  pastSteps?: number;
  /** … and this many minutes after (clock skew), default 2. */
  futureSteps?: number;
}

/** True when `code` matches for some time step in the window; every comparison is constant-time. */
export function verifyApprovalCode(options: VerifyCodeOptions): boolean {
  const at = options.at ?? new Date();
  const now = ocraTimeSteps(approvalSuite, at);
  const question = approvalQuestion(options.challenge, options.decision);
  let match = false;
  for (
    let step = now - BigInt(options.pastSteps ?? 30);
    step <= now + BigInt(options.futureSteps ?? 2);
    step++
  ) {
    const expected = generateOcra(approvalSuite, options.secret, { question, timeSteps: step });
    // No early exit: the time taken does not depend on which step matched.
    if (codesEqual(expected, options.code)) match = true;
  }
  return match;
}
