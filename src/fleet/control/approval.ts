/**
 * Per-rollout mail approval: a rollout made with `requireApproval` waits (state awaiting-approval)
 * until one administrator approves it by mail. Each administrator gets a fresh challenge bound, in
 * the control plane's database, to that rollout and its frozen patch set; the reply carries the
 * challenge, the decision and the OCRA code of `understudy approve-code` (the mail module's), so one
 * code approves exactly one rollout's exact patch set, once.
 *
 * Replies are judged as the single-host monitor judges them (the mail module's `parseReply`): a
 * stranger's mail is refused on its headers, and with a trusted authserv-id a reply counts only when
 * the receiving mail server's own Authentication-Results authenticate the sender's domain (DKIM or
 * DMARC), so a forged From is refused. Every reply, accepted or refused, is written to `fleet.audit`
 * (action `rollout.approve`) and logged; checking the challenge, counting a wrong code, consuming
 * the challenge and starting (or stopping) the rollout happen in one transaction.
 */
import type pg from 'pg';
import { UnderstudyError, silentLogger, type Logger } from '../../core/index.ts';
import {
  canonicalDecision,
  parseReply,
  rejectionText,
  verifyApprovalCode,
  DEFAULT_MAX_FAILED_ATTEMPTS,
  type ApprovalAdmin,
  type Decision,
  type MailboxReader,
  type MailSender,
  type OutgoingMail,
  type RejectionReason,
} from '../../mail/index.ts';
import { randomBytes } from 'node:crypto';
import { audit } from './enrol.ts';

export interface RolloutApprovalOptions {
  db: pg.Pool;
  admins: readonly ApprovalAdmin[];
  /** The control plane's own address (From of the notifications). */
  from: string;
  mailer: MailSender;
  mailbox: MailboxReader;
  /**
   * The authserv-id of the mail server that receives the replies; when set, a reply counts only if
   * that server's topmost Authentication-Results authenticates the sender's domain.
   */
  trustedAuthServId: string | null;
  /** How long a challenge stays valid (default 24 h). */
  challengeTtlMs?: number;
  /** Codes computed up to this many minutes before the reply is read are accepted (default 30). */
  codeWindowMinutes?: number;
  maxFailedAttempts?: number;
  logger?: Logger;
  now?: () => Date;
}

/**
 * Why an approval was refused: the mail module's reasons, a reply too large to read, or `replaced`
 * (a newer challenge was issued to that administrator for that rollout).
 */
export type RolloutRefusal = RejectionReason | 'too-large' | 'replaced';

export const refusalText = (reason: RolloutRefusal): string =>
  reason === 'too-large'
    ? 'the reply is too large to be read'
    : reason === 'replaced'
      ? 'a newer challenge was issued for this rollout; use the code of the newest one'
      : rejectionText[reason];

/** The outcome of one reply (or one approval through the API). */
export type RolloutApprovalVerdict =
  | { ok: true; rolloutId: number; admin: string; decision: Decision; state: 'running' | 'stopped' }
  | { ok: false; reason: RolloutRefusal; from: string; rolloutId?: number };

/** What checking an approval code needs (the mail's and the API's approvals share it). */
export interface ApprovalCheckOptions {
  db: pg.Pool;
  /** Codes computed up to this many minutes before the check are accepted (default 30). */
  codeWindowMinutes?: number;
  maxFailedAttempts?: number;
  now?: () => Date;
}

/** One decision to check: the administrator, the challenge, the decision and its code. */
export interface ApprovalAttempt {
  admin: ApprovalAdmin;
  /** Who sent it, for the refusal (an address by mail, the operator through the API). */
  from: string;
  challenge: string;
  decision: Decision;
  code: string;
  /** How it arrived, in the rollout's reason: "by mail", "through the API (operator rick)". */
  via: string;
  /** The rollout the decision is meant for; a challenge of another rollout is refused (foreign). */
  rolloutId?: number;
}

interface ChallengeRow {
  challenge: string;
  rollout_id: string;
  admin: string;
  patch_set: string[];
  expires_at: Date;
  state: 'open' | 'used' | 'locked' | 'replaced';
  rollout_state: string;
  rollout_patch_set: string[];
}

export function composeRolloutNotification(o: {
  from: string;
  to: string;
  adminName: string;
  rollout: { id: number; name: string; patchSet: readonly string[]; targets: number; waves: number };
  challenge: string;
  expiresAt: Date;
}): OutgoingMail {
  const text = [
    `Hello ${o.adminName},`,
    '',
    `Rollout ${o.rollout.id} "${o.rollout.name}" waits for an approval before its first wave.`,
    `It patches ${o.rollout.targets} LC${o.rollout.targets === 1 ? '' : 's'} in ${o.rollout.waves} wave${o.rollout.waves === 1 ? '' : 's'} with exactly these patches:`,
    '',
    ...o.rollout.patchSet.map((p) => `  * ${p}`),
    '',
    'To decide, reply to this mail with these three lines:',
    '',
    `Challenge: ${o.challenge}`,
    'Decision: approve all        (or "reject")',
    `Code: <the code from: understudy approve-code ${o.challenge} --decision "<decision>">`,
    '',
    `The challenge expires at ${o.expiresAt.toISOString()}. One approval starts the rollout; the code`,
    'is valid for this rollout, its patch set and the decision it was computed for, once.',
    '',
    '-- understudy control plane',
  ];
  return {
    from: o.from,
    to: o.to,
    subject: `[understudy] rollout ${o.rollout.id} "${o.rollout.name}" awaits approval [challenge ${o.challenge.slice(0, 8)}]`,
    text: `${text.join('\n')}\n`,
  };
}

/**
 * Makes the first challenge of every administrator for each rollout awaiting approval, and mails
 * every open challenge not mailed yet (first ones, and those a reissue made). The challenge row is
 * written before the mail is sent, so a crash between the two never sends a challenge the database
 * does not know; `mailed_at` is set after the send, so a send that fails is retried at the next
 * call (with the same challenge). Returns the number of mails sent.
 */
export async function notifyRolloutApprovals(o: RolloutApprovalOptions): Promise<number> {
  const now = o.now?.() ?? new Date();
  const log = o.logger ?? silentLogger;
  const rollouts = await o.db.query<{ id: string; name: string; patch_set: string[]; waves: unknown[][] }>(
    `SELECT id, name, patch_set, waves FROM fleet.rollouts WHERE state = 'awaiting-approval' ORDER BY id`,
  );
  let sent = 0;
  for (const r of rollouts.rows) {
    for (const admin of o.admins) {
      // Only the first challenge is made here: once one expired or was locked, a new one is
      // issued explicitly (`reissueChallenge`).
      await o.db.query(
        `INSERT INTO fleet.rollout_challenges (challenge, rollout_id, admin, patch_set, created_at, expires_at)
         SELECT $1, $2, $3, $4, $5, $6
         WHERE NOT EXISTS (SELECT 1 FROM fleet.rollout_challenges WHERE rollout_id = $2 AND admin = $3)
         ON CONFLICT DO NOTHING`,
        [
          randomBytes(20).toString('hex'),
          r.id,
          admin.name,
          JSON.stringify(r.patch_set),
          now,
          new Date(now.getTime() + (o.challengeTtlMs ?? 24 * 3600_000)),
        ],
      );
      const due = await o.db.query<{ challenge: string; expires_at: Date }>(
        `SELECT challenge, expires_at FROM fleet.rollout_challenges
         WHERE rollout_id = $1 AND admin = $2 AND state = 'open' AND mailed_at IS NULL AND expires_at > $3`,
        [r.id, admin.name, now],
      );
      for (const c of due.rows) {
        await o.mailer.send(
          composeRolloutNotification({
            from: o.from,
            to: admin.email,
            adminName: admin.name,
            rollout: {
              id: Number(r.id),
              name: r.name,
              patchSet: r.patch_set,
              targets: r.waves.reduce((n, w) => n + w.length, 0),
              waves: r.waves.length,
            },
            challenge: c.challenge,
            expiresAt: c.expires_at,
          }),
        );
        await o.db.query('UPDATE fleet.rollout_challenges SET mailed_at = $2 WHERE challenge = $1', [
          c.challenge,
          now,
        ]);
        log.info(
          { event: 'fleet.approval.requested', rolloutId: Number(r.id), admin: admin.name },
          'rollout approval requested by mail',
        );
        sent += 1;
      }
    }
  }
  return sent;
}

/**
 * Reads the unseen replies and judges each once. An accepted approval moves its rollout from
 * awaiting-approval to running (a rejection stops it) and returns it; the caller starts ticking it.
 */
export async function processRolloutReplies(o: RolloutApprovalOptions): Promise<RolloutApprovalVerdict[]> {
  const log = o.logger ?? silentLogger;
  const messages = await o.mailbox.fetchUnseen();
  const verdicts: RolloutApprovalVerdict[] = [];
  const seen: number[] = [];
  const senders = o.admins.map((a) => a.email.toLowerCase());
  for (const message of messages) {
    seen.push(message.uid);
    let verdict: RolloutApprovalVerdict;
    let key = `uid:${message.uid}`;
    let challenge: string | null = null;
    if (message.source === null) verdict = { ok: false, reason: 'too-large', from: '' };
    else {
      const reply = await parseReply(message.source, { senders, trustedAuthServId: o.trustedAuthServId });
      key = reply.messageId ?? key;
      if (reply.from === o.from.toLowerCase()) continue; // our own mail, never judged
      const done = await o.db.query('SELECT 1 FROM fleet.approval_replies WHERE message_key = $1', [key]);
      if (done.rowCount) continue;
      if (reply.rejected) verdict = { ok: false, reason: reply.rejected, from: reply.from };
      else if (!reply.approval) verdict = { ok: false, reason: 'malformed', from: reply.from };
      else {
        challenge = reply.approval.challenge;
        const admin = o.admins.find((a) => a.email.toLowerCase() === reply.from);
        verdict = admin
          ? await decideRolloutApproval(o, {
              admin,
              from: reply.from,
              challenge,
              decision: reply.approval.decision,
              code: reply.approval.code,
              via: 'by mail',
            })
          : { ok: false, reason: 'unknown-sender', from: reply.from };
      }
    }
    await o.db.query(
      `INSERT INTO fleet.approval_replies (message_key, outcome, reason) VALUES ($1, $2, $3)
       ON CONFLICT (message_key) DO NOTHING`,
      [key, verdict.ok ? 'accepted' : 'refused', verdict.ok ? null : verdict.reason],
    );
    await recordVerdict(o.db, log, verdict, { messageKey: key.slice(0, 200), via: 'mail', challenge });
    verdicts.push(verdict);
  }
  await o.mailbox.markSeen(seen);
  return verdicts;
}

/**
 * Writes an approval's verdict to the audit (action `rollout.approve`) and the log
 * (`fleet.approval.accepted` / `fleet.approval.refused`).
 */
export async function recordVerdict(
  db: pg.Pool,
  log: Logger,
  verdict: RolloutApprovalVerdict,
  context: { via: 'mail' | 'api' | 'cli'; challenge: string | null } & Record<string, unknown>,
): Promise<void> {
  const { challenge, ...rest } = context;
  await audit(db, {
    actor: verdict.ok ? verdict.admin : verdict.from || 'unknown',
    action: 'rollout.approve',
    outcome: verdict.ok ? 'allowed' : 'refused',
    detail: {
      ...rest,
      ...(verdict.ok
        ? {
            rolloutId: verdict.rolloutId,
            decision: canonicalDecision(verdict.decision),
            state: verdict.state,
          }
        : {
            reason: verdict.reason,
            ...(verdict.rolloutId !== undefined ? { rolloutId: verdict.rolloutId } : {}),
            ...(challenge ? { challenge: challenge.slice(0, 8) } : {}),
          }),
    },
  });
  if (verdict.ok)
    log.info(
      {
        event: 'fleet.approval.accepted',
        rolloutId: verdict.rolloutId,
        admin: verdict.admin,
        state: verdict.state,
        via: context.via,
      },
      'rollout approval accepted',
    );
  else
    log.warn(
      {
        event: 'fleet.approval.refused',
        from: verdict.from,
        reason: verdict.reason,
        rolloutId: verdict.rolloutId,
        via: context.via,
      },
      `rollout approval refused: ${refusalText(verdict.reason)}`,
    );
}

/**
 * Checks an administrator's decision against its challenge and, when it counts, consumes the
 * challenge (and the other administrators' open challenges of that rollout) and moves the rollout
 * (approve: running, reject: stopped), in one transaction. The rules are the same however the
 * decision arrived: the challenge must exist, be the administrator's, be open (not used, locked,
 * replaced by a newer one, or expired), still match the rollout's patch set, and the code must be
 * the administrator's for that challenge and decision, computed within the code window; a wrong
 * code counts, and locks the challenge at the limit. Does not audit (see recordVerdict).
 */
export async function decideRolloutApproval(
  o: ApprovalCheckOptions,
  reply: ApprovalAttempt,
): Promise<RolloutApprovalVerdict> {
  const now = o.now?.() ?? new Date();
  const admin = reply.admin;
  const client = await o.db.connect();
  try {
    await client.query('BEGIN');
    const found = await client.query<ChallengeRow>(
      `SELECT c.challenge, c.rollout_id, c.admin, c.patch_set, c.expires_at, c.state,
         r.state AS rollout_state, r.patch_set AS rollout_patch_set
       FROM fleet.rollout_challenges c JOIN fleet.rollouts r ON r.id = c.rollout_id
       WHERE c.challenge = $1 FOR UPDATE OF c, r`,
      [reply.challenge.toLowerCase()],
    );
    const row = found.rows[0];
    const refuse = async (reason: RolloutRefusal): Promise<RolloutApprovalVerdict> => {
      await client.query('COMMIT');
      return {
        ok: false,
        reason,
        from: reply.from,
        ...(row ? { rolloutId: Number(row.rollout_id) } : {}),
      };
    };
    if (!row) return await refuse('unknown-challenge');
    if (row.admin !== admin.name) return await refuse('foreign');
    if (reply.rolloutId !== undefined && Number(row.rollout_id) !== reply.rolloutId)
      return await refuse('foreign');
    if (row.state === 'used' || row.rollout_state !== 'awaiting-approval') return await refuse('reused');
    if (row.state === 'replaced') return await refuse('replaced');
    if (row.state === 'locked') return await refuse('locked');
    if (row.expires_at.getTime() <= now.getTime()) return await refuse('expired');
    // The code binds the challenge; the challenge binds this patch set, which must still be the
    // rollout's. An approval of some patches only does not fit a rollout's fixed set.
    const sameSet =
      JSON.stringify([...row.patch_set].sort()) === JSON.stringify([...row.rollout_patch_set].sort());
    const names = reply.decision.kind === 'approve' ? [...reply.decision.patches].sort() : null;
    if (!sameSet || (names && JSON.stringify(names) !== JSON.stringify([...row.patch_set].sort())))
      return await refuse('foreign');
    const valid = verifyApprovalCode({
      secret: admin.secret,
      challenge: row.challenge,
      decision: reply.decision,
      code: reply.code,
      at: now,
      pastSteps: o.codeWindowMinutes ?? 30,
    });
    if (!valid) {
      await client.query(
        `UPDATE fleet.rollout_challenges SET failed_attempts = failed_attempts + 1,
           state = CASE WHEN failed_attempts + 1 >= $2 THEN 'locked' ELSE state END
         WHERE challenge = $1`,
        [row.challenge, o.maxFailedAttempts ?? DEFAULT_MAX_FAILED_ATTEMPTS],
      );
      return await refuse('wrong-code');
    }
    const decision = canonicalDecision(reply.decision);
    await client.query(
      `UPDATE fleet.rollout_challenges SET state = 'used', used_at = $2,
         decision = CASE WHEN challenge = $3 THEN $4 ELSE 'decided by ' || $5 END
       WHERE rollout_id = $1 AND state = 'open'`,
      [row.rollout_id, now, row.challenge, decision, admin.name],
    );
    const state = reply.decision.kind === 'reject' ? 'stopped' : 'running';
    await client.query(`UPDATE fleet.rollouts SET state = $2, reason = $3, updated_at = $4 WHERE id = $1`, [
      row.rollout_id,
      state,
      `${state === 'stopped' ? 'rejected' : 'approved'} by ${admin.name} ${reply.via}`,
      now,
    ]);
    await client.query('COMMIT');
    return {
      ok: true,
      rolloutId: Number(row.rollout_id),
      admin: admin.name,
      decision: reply.decision,
      state,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Issues a new challenge to `admin` for a rollout awaiting approval (the earlier one expired, was
 * locked, or its mail was lost): every earlier challenge of that administrator for that rollout
 * becomes `replaced` (its code is refused from now on) and the new one is to be mailed (the
 * approvals' next round sends it). Throws FLEET_NOT_FOUND for an unknown rollout and
 * FLEET_ROLLOUT_STATE when it is not awaiting approval.
 */
export async function reissueChallenge(
  db: pg.Pool,
  options: { rolloutId: number; admin: string; ttlMs?: number; now?: Date },
): Promise<{ challenge: string; admin: string; expiresAt: Date; patchSet: string[]; replaced: number }> {
  const now = options.now ?? new Date();
  if (!/^[\w.@-]{1,64}$/.test(options.admin))
    throw new UnderstudyError('INVALID_ARGUMENT', `"${options.admin}" is not an administrator's name`);
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const r = await client.query<{ state: string; patch_set: string[] }>(
      'SELECT state, patch_set FROM fleet.rollouts WHERE id = $1 FOR UPDATE',
      [options.rolloutId],
    );
    const rollout = r.rows[0];
    if (!rollout) throw new UnderstudyError('FLEET_NOT_FOUND', `rollout ${options.rolloutId} does not exist`);
    if (rollout.state !== 'awaiting-approval')
      throw new UnderstudyError(
        'FLEET_ROLLOUT_STATE',
        `rollout ${options.rolloutId} is ${rollout.state}, not awaiting approval: there is nothing to approve`,
      );
    const replaced = await client.query(
      `UPDATE fleet.rollout_challenges SET state = 'replaced'
       WHERE rollout_id = $1 AND admin = $2 AND state IN ('open','locked')`,
      [options.rolloutId, options.admin],
    );
    const challenge = randomBytes(20).toString('hex');
    const expiresAt = new Date(now.getTime() + (options.ttlMs ?? 24 * 3600_000));
    await client.query(
      `INSERT INTO fleet.rollout_challenges (challenge, rollout_id, admin, patch_set, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [challenge, options.rolloutId, options.admin, JSON.stringify(rollout.patch_set), now, expiresAt],
    );
    await client.query('COMMIT');
    return {
      challenge,
      admin: options.admin,
      expiresAt,
      patchSet: rollout.patch_set,
      replaced: replaced.rowCount ?? 0,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export interface RolloutApprovals {
  /** One round: mail the new challenges, judge the new replies. */
  pollOnce(): Promise<RolloutApprovalVerdict[]>;
  stop(): Promise<void>;
}

/**
 * Polls every `pollMs` until stopped: mails challenges for rollouts awaiting approval and judges
 * the replies; `onDecided` gets each rollout an accepted reply moved (the control worker's `kick`).
 * A round that fails (mail or database server down) is logged and retried at the next round.
 */
export function startRolloutApprovals(
  options: RolloutApprovalOptions & { pollMs?: number; onDecided: (rolloutId: number) => Promise<void> },
): RolloutApprovals {
  const log = options.logger ?? silentLogger;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<unknown> = Promise.resolve();
  const pollOnce = async (): Promise<RolloutApprovalVerdict[]> => {
    await notifyRolloutApprovals(options);
    const verdicts = await processRolloutReplies(options);
    for (const v of verdicts) if (v.ok) await options.onDecided(v.rolloutId);
    return verdicts;
  };
  const loop = (): void => {
    if (stopped) return;
    round = pollOnce()
      .catch((error: unknown) =>
        log.warn(
          {
            event: 'fleet.approval.poll_failed',
            reason: error instanceof Error ? error.message : String(error),
          },
          'rollout approvals: this round failed; retrying',
        ),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, options.pollMs ?? 5_000);
      });
  };
  loop();
  return {
    pollOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
      await options.mailbox.close();
      options.mailer.close();
    },
  };
}
