/**
 * The patch monitor (SPEC §6, Fig. 19): polls each feed on its own schedule (1801–1803), mails
 * new patches to the administrators (1804–1805), reads their replies (1806), authenticates them
 * (1807), sets "apply at next run" (1808) and starts the patch run through an injected hook (1809).
 * Every step is driven by state in the store, so a restart resumes where it stopped: registered
 * but unmailed patches stay in `pending_notifications`, processed replies are remembered.
 */
import path from 'node:path';
import { isUnderstudyError, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { Catalogue, Patch } from '../catalogue/index.ts';
import {
  composeAnswer,
  composeNotification,
  issueChallenge,
  markApprovalApplied,
  parseReply,
  pendingApprovals,
  rejectionText,
  signApprovalLink,
  verifyApproval,
  type ApprovalVerdict,
  type Decision,
  type MailboxReader,
  type MailSender,
} from '../mail/index.ts';
import type { ResolvedMonitorConfig } from './config.ts';
import {
  dueFeeds,
  getFeed,
  getFeedState,
  listFeeds,
  recentFeedEvents,
  recordPoll,
  type Feed,
  type FeedState,
} from './feeds.ts';
import { safeUrl, type Fetcher } from './fetch.ts';
import { pollPatchServer, type PollContext, type PollResult } from './poll-patch-server.ts';
import { pollApt } from './poll-apt.ts';
import { applyDecision, autoApprove, type ApplyDeps } from './decisions.ts';
import type { ManagedLcs, StartPatchRun } from './lcs.ts';

export type { ManagedLcs, StartPatchRun } from './lcs.ts';

export interface MonitorDeps {
  db: Db;
  catalogue: Catalogue;
  config: ResolvedMonitorConfig;
  stateDir: string;
  fetcher: Fetcher;
  managedLcs: ManagedLcs;
  mailer?: MailSender | null;
  mailbox?: MailboxReader | null;
  startPatchRun?: StartPatchRun;
  logger: Logger;
  now?: () => Date;
}

export interface MonitorStatus {
  running: boolean;
  feeds: (FeedState & {
    name: string;
    kind: Feed['kind'];
    url: string;
    intervalSeconds: number;
    /** The feed's index has not been regenerated for longer than `monitor.feedStaleAfterHours`. */
    stale: boolean;
  })[];
  pendingNotifications: number;
  lastMailCheckAt: string | null;
  lastMailError: string | null;
}

/**
 * What the monitor reports as it works (the daemon puts these on its event log):
 * - `poll.started` / `poll.ended`: a poll of one feed, on the schedule or asked for (`request`);
 *   its end carries the outcome, the patches it registered, the error and the next poll time.
 * - `patches.found`: a poll registered new patches (1802–1804).
 * - `mail.sent`: an administrator was mailed about new patches (1805).
 */
export type MonitorEvent =
  | { kind: 'poll.started'; feed: string; trigger: PollTrigger }
  | {
      kind: 'poll.ended';
      feed: string;
      trigger: PollTrigger;
      outcome: PollResult['outcome'];
      registered: string[];
      error: string | null;
      code: string | null;
      ms: number;
      nextPollAt: string | null;
    }
  | { kind: 'patches.found'; feed: string; patches: string[] }
  | { kind: 'mail.sent'; admin: string; patches: string[] };

export type PollTrigger = 'schedule' | 'request';

export interface Monitor {
  /** Calls `listener` for every MonitorEvent; returns the unsubscribe function. */
  subscribe(listener: (event: MonitorEvent) => void): () => void;
  /** Starts the schedule (one timer; each feed has its own next-poll time). */
  start(): void;
  /** Stops the schedule and waits for the running tick to end. */
  stop(): Promise<void>;
  /** Polls one feed (or every feed) now, regardless of schedule; then mails what is pending. */
  pollNow(feed?: string): Promise<(PollResult & { feed: string })[]>;
  /** Sends the pending notifications. Returns the number of mails sent. */
  notifyPending(): Promise<number>;
  /** Reads and handles unseen replies. Returns the verdicts. */
  processReplies(): Promise<ApprovalVerdict[]>;
  /** Applies a verified approval that arrived by link or API (the mail path does this itself). */
  applyVerdict(verdict: ApprovalVerdict, via: 'mail' | 'link' | 'api'): Promise<void>;
  status(): MonitorStatus;
  events(feed: string): ReturnType<typeof recentFeedEvents>;
}

export function createMonitor(deps: MonitorDeps): Monitor {
  const now = deps.now ?? (() => new Date());
  const log = deps.logger;
  const { db, catalogue, config } = deps;
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  let current: Promise<void> | null = null;
  let lastMailCheck = 0;
  let lastMailCheckAt: string | null = null;
  let lastMailError: string | null = null;
  let notifyFailures = 0;
  let notifyRetryAt = 0;
  const abort = new AbortController();
  const listeners = new Set<(event: MonitorEvent) => void>();
  const emit = (event: MonitorEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        // A listener (the event log) failing must not fail the poll; it is logged as a bug.
        log.error({ event: 'monitor.listener_failed', err: error }, 'a monitor event listener failed');
      }
    }
  };

  const applyDeps: ApplyDeps = {
    db,
    catalogue,
    managedLcs: deps.managedLcs,
    startPatchRun: deps.startPatchRun,
    logger: log,
    now,
  };

  const pollContext = (): PollContext => ({
    catalogue,
    fetcher: deps.fetcher,
    workDir: path.join(deps.stateDir, 'cache', 'monitor'),
    logger: log,
    now,
    signal: abort.signal,
  });

  // Polls and notifications run one at a time (the schedule and an API "poll now" may overlap).
  let queue: Promise<unknown> = Promise.resolve();
  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  }

  function pollFeed(feed: Feed, trigger: PollTrigger): Promise<PollResult & { feed: string }> {
    return exclusive(() => pollFeedNow(feed, trigger));
  }

  async function pollFeedNow(feed: Feed, trigger: PollTrigger): Promise<PollResult & { feed: string }> {
    const state = getFeedState(db, feed.name);
    const started = performance.now();
    emit({ kind: 'poll.started', feed: feed.name, trigger });
    const result =
      feed.kind === 'apt'
        ? await pollApt(feed, state, { ...pollContext(), db, managedLcs: deps.managedLcs })
        : await pollPatchServer(feed, state, pollContext());
    const at = now();
    const enqueue = db.prepare(
      'INSERT OR IGNORE INTO pending_notifications (patch, queued_at) VALUES (?, ?)',
    );
    for (const name of result.registeredNames) enqueue.run(name, at.toISOString());
    const after = recordPoll(db, feed, result, at);
    const fields = {
      event: 'feed.polled',
      feed: feed.name,
      outcome: result.outcome,
      registered: result.registered,
      ms: Math.round(performance.now() - started),
      nextPollAt: after.nextPollAt,
    };
    if (result.error)
      log.warn(
        { ...fields, code: result.error.code, reason: result.error.message, failures: result.failures },
        'feed poll failed',
      );
    else log.info(fields, 'feed polled');
    emit({
      kind: 'poll.ended',
      feed: feed.name,
      trigger,
      outcome: result.outcome,
      registered: result.registeredNames,
      error: result.error?.message ?? null,
      code: result.error?.code ?? null,
      ms: fields.ms,
      nextPollAt: after.nextPollAt,
    });
    if (result.registeredNames.length > 0)
      emit({ kind: 'patches.found', feed: feed.name, patches: result.registeredNames });
    if (isStale(after))
      log.warn(
        {
          event: 'feed.stale',
          feed: feed.name,
          indexGenerated: after.indexGenerated,
          staleAfterHours: config.monitor.feedStaleAfterHours,
        },
        'feed has not advanced: its server may be frozen or replaying an old index',
      );
    return { ...result, feed: feed.name };
  }

  function isStale(state: FeedState): boolean {
    if (!state.indexGenerated) return false;
    return now().getTime() - Date.parse(state.indexGenerated) > config.monitor.feedStaleAfterHours * 3600_000;
  }

  function notifyPending(): Promise<number> {
    return exclusive(notifyPendingNow);
  }

  /**
   * Mails the pending patches to each administrator. An administrator already mailed about a
   * patch is not mailed again when another administrator's mail fails and the batch is retried.
   */
  async function notifyPendingNow(): Promise<number> {
    const pending = db.prepare('SELECT patch FROM pending_notifications ORDER BY queued_at, patch').all() as {
      patch: string;
    }[];
    if (pending.length === 0) return 0;
    if (!deps.mailer || !config.mail) return 0;
    const patches = pending
      .map((p) => (catalogue.hasPatch(p.patch) ? catalogue.getPatch(p.patch) : null))
      .filter((p): p is Patch => p !== null);
    let sent = 0;
    const ttlMs = config.approval.challengeTtlHours * 3600_000;
    for (const admin of config.administrators) {
      const alreadySent = new Set(
        (
          db.prepare('SELECT patch FROM notifications_sent WHERE admin = ?').all(admin.name) as {
            patch: string;
          }[]
        ).map((r) => r.patch),
      );
      const mine = (
        admin.categories
          ? patches.filter((p) => p.categories.some((c) => admin.categories?.includes(c)))
          : patches
      ).filter((p) => !alreadySent.has(p.name));
      if (mine.length === 0) continue;
      const challenge = issueChallenge(db, {
        admin: admin.name,
        patches: mine.map((p) => p.name),
        ttlMs,
        now: now(),
      });
      const links =
        config.api.publicUrl && config.api.linkSecret
          ? (['approve-all', 'reject'] as const).map((kind) => {
              const token = signApprovalLink(config.api.linkSecret as Buffer, {
                challenge: challenge.challenge,
                decision: { kind },
                admin: admin.name,
                expiresAt: Date.parse(challenge.expiresAt),
              });
              return `${config.api.publicUrl?.replace(/\/$/, '')}/v1/approvals/link?t=${token}`;
            })
          : null;
      const mail = composeNotification({
        from: config.mail.from,
        to: admin.email,
        adminName: admin.name,
        patches: mine.map((p) => ({
          name: p.name,
          categories: p.categories,
          description: p.description,
          publishedAt: p.publishedAt,
          sourceFeed: p.sourceFeed,
        })),
        challenge: challenge.challenge,
        expiresAt: challenge.expiresAt,
        links: links ? { approveAll: links[0] ?? '', reject: links[1] ?? '' } : undefined,
      });
      await deps.mailer.send(mail); // a failure keeps the batch pending for the next try
      const sentAt = now().toISOString();
      const mark = db.prepare(
        'INSERT OR IGNORE INTO notifications_sent (patch, admin, challenge, sent_at) VALUES (?, ?, ?, ?)',
      );
      db.transaction(() => mine.forEach((p) => mark.run(p.name, admin.name, challenge.challenge, sentAt)))();
      sent++;
      log.info({ event: 'mail.notified', admin: admin.name, patches: mine.length }, 'notification mailed');
      emit({ kind: 'mail.sent', admin: admin.name, patches: mine.map((p) => p.name) });
    }
    const remove = db.prepare('DELETE FROM pending_notifications WHERE patch = ?');
    db.transaction(() => pending.forEach((p) => remove.run(p.patch)))();
    return sent;
  }

  /**
   * Applies every accepted approval not applied yet: the approval was stored in the transaction that
   * consumed its challenge, so one accepted just before a crash is applied after the restart. Runs one
   * at a time with polls and notifications.
   */
  function applyPendingApprovals(): Promise<number> {
    return exclusive(async () => {
      let applied = 0;
      for (const pending of pendingApprovals(db)) {
        await applyDecision(applyDeps, {
          patches: pending.patches,
          decision: pending.decision,
          by: pending.admin,
          via: pending.via,
        });
        markApprovalApplied(db, pending.challenge, now());
        applied++;
      }
      return applied;
    });
  }

  async function applyVerdict(verdict: ApprovalVerdict, _via: 'mail' | 'link' | 'api'): Promise<void> {
    if (!verdict.ok) return;
    await applyPendingApprovals();
  }

  async function answer(
    to: string,
    subject: string,
    inReplyTo: string | null,
    accepted: boolean,
    text: string,
  ): Promise<void> {
    if (!deps.mailer || !config.mail || !to) return;
    try {
      await deps.mailer.send(
        composeAnswer({
          from: config.mail.from,
          to,
          subject,
          inReplyTo: inReplyTo ?? undefined,
          accepted,
          text,
        }),
      );
    } catch (error) {
      log.warn(
        { event: 'mail.answer_failed', to, reason: (error as Error).message },
        'could not answer a reply',
      );
    }
  }

  async function processReplies(): Promise<ApprovalVerdict[]> {
    if (!deps.mailbox) return [];
    const messages = await deps.mailbox.fetchUnseen();
    const verdicts: ApprovalVerdict[] = [];
    const seen: number[] = [];
    const senders = config.administrators.map((a) => a.email);
    for (const message of messages) {
      if (message.source === null) {
        // Over the size cap: not downloaded, so not read and not answered (its sender is unknown).
        seen.push(message.uid);
        const key = `uid:${message.uid}`;
        db.prepare(
          'INSERT OR IGNORE INTO processed_messages (message_key, processed_at, outcome, reason) VALUES (?, ?, ?, ?)',
        ).run(key, now().toISOString(), 'rejected', 'too-large');
        log.warn(
          { event: 'approval.rejected', uid: message.uid, size: message.size, reason: 'too-large' },
          'reply too large; not read',
        );
        verdicts.push({ ok: false, reason: 'malformed', message: 'the reply is too large to be read' });
        continue;
      }
      const reply = await parseReply(message.source, {
        senders,
        trustedAuthServId: config.mail?.imap?.trustedAuthServId ?? null,
        maxBytes: config.mail?.imap?.maxMessageBytes,
      });
      const key = reply.messageId ?? `uid:${message.uid}`;
      seen.push(message.uid);
      if (db.prepare('SELECT 1 FROM processed_messages WHERE message_key = ?').get(key)) continue;
      const ownAddress = config.mail?.from.toLowerCase() ?? '';
      if (reply.from === ownAddress) continue; // never answer our own mail (no loops)
      // Only an administrator whose mail was read gets an answer: a stranger or an unauthenticated
      // sender (the From may be forged) gets none, so understudy never sends mail to whoever an
      // attacker names (backscatter), and machines are never answered (no loops).
      const mayAnswer =
        !reply.automatic && reply.rejected !== 'unknown-sender' && reply.rejected !== 'unauthenticated';
      let verdict: ApprovalVerdict;
      if (reply.rejected === 'unknown-sender')
        verdict = {
          ok: false,
          reason: 'unknown-sender',
          message: 'the sender is not a configured administrator',
        };
      else if (reply.rejected === 'unauthenticated')
        verdict = {
          ok: false,
          reason: 'unauthenticated',
          message: rejectionText.unauthenticated,
        };
      else if (reply.rejected === 'too-large')
        verdict = { ok: false, reason: 'malformed', message: 'the reply is too large to be read' };
      else if (!reply.approval)
        verdict = { ok: false, reason: 'malformed', message: reply.problem ?? 'malformed reply' };
      else {
        verdict = verifyApproval({
          db,
          admins: config.administrators,
          sender: { email: reply.from },
          challenge: reply.approval.challenge,
          decision: reply.approval.decision,
          code: reply.approval.code,
          via: 'mail',
          now: now(),
          codeWindowMinutes: config.approval.codeWindowMinutes,
          maxFailedAttempts: config.approval.maxFailedAttempts,
        });
      }
      db.prepare(
        'INSERT INTO processed_messages (message_key, processed_at, outcome, reason) VALUES (?, ?, ?, ?)',
      ).run(
        key,
        now().toISOString(),
        verdict.ok ? 'accepted' : 'rejected',
        verdict.ok ? null : verdict.reason,
      );
      if (verdict.ok) {
        log.info(
          {
            event: 'approval.accepted',
            admin: verdict.admin.name,
            decision: verdict.decision.kind,
            patches: verdict.patches,
          },
          'approval accepted',
        );
        await applyVerdict(verdict, 'mail');
        if (mayAnswer)
          await answer(
            reply.from,
            reply.subject,
            reply.messageId,
            true,
            describeAccepted(verdict.decision, verdict.patches),
          );
      } else {
        log.warn(
          { event: 'approval.rejected', from: reply.from, reason: verdict.reason },
          'approval rejected',
        );
        if (mayAnswer)
          await answer(
            reply.from,
            reply.subject,
            reply.messageId,
            false,
            `Your reply was not accepted: ${verdict.message}. Nothing was changed.`,
          );
      }
      verdicts.push(verdict);
    }
    await deps.mailbox.markSeen(seen);
    return verdicts;
  }

  async function tick(): Promise<void> {
    await applyPendingApprovals();
    const t = now();
    for (const feed of dueFeeds(db, t)) {
      if (!running) return;
      await pollFeed(feed, 'schedule');
    }
    await autoApprove(applyDeps, config.autoApprove);
    if (Date.now() >= notifyRetryAt) {
      try {
        await notifyPending();
        notifyFailures = 0;
      } catch (error) {
        if (!isUnderstudyError(error)) throw error;
        notifyFailures++;
        // Back off (2 s, 4 s, … at most 5 min) so a down SMTP server is not hammered every tick.
        const delayMs = Math.min(300_000, 1000 * 2 ** notifyFailures);
        notifyRetryAt = Date.now() + delayMs;
        log.warn(
          { event: 'mail.notify_failed', code: error.code, reason: error.message, retryInMs: delayMs },
          'notification not sent; will retry',
        );
      }
    }
    const imapEveryMs = (config.mail?.imap?.pollSeconds ?? 60) * 1000;
    if (deps.mailbox && Date.now() - lastMailCheck >= imapEveryMs) {
      lastMailCheck = Date.now();
      try {
        await processReplies();
        lastMailCheckAt = now().toISOString();
        lastMailError = null;
      } catch (error) {
        if (!isUnderstudyError(error) && !(error instanceof Error)) throw error;
        lastMailError = (error as Error).message;
        log.warn({ event: 'mail.read_failed', reason: lastMailError }, 'reading replies failed; will retry');
      }
    }
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      current = tick()
        .catch((error: unknown) =>
          log.error({ event: 'monitor.tick_failed', err: error }, 'monitor tick failed'),
        )
        .finally(() => {
          current = null;
          schedule();
        });
    }, config.monitor.tickMs);
  }

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (running) return;
      running = true;
      log.info({ event: 'monitor.started', feeds: listFeeds(db).length }, 'monitor started');
      schedule();
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      abort.abort();
      await current;
      await deps.mailbox?.close();
      deps.mailer?.close();
    },
    async pollNow(name) {
      const feeds = name ? [getFeed(db, name)] : listFeeds(db);
      const results = [];
      for (const feed of feeds) results.push(await pollFeed(feed, 'request'));
      try {
        await notifyPending();
      } catch (error) {
        if (!isUnderstudyError(error)) throw error;
        log.warn(
          { event: 'mail.notify_failed', code: error.code, reason: error.message },
          'notification not sent; will retry',
        );
      }
      return results;
    },
    notifyPending,
    processReplies,
    applyVerdict,
    status() {
      return {
        running,
        feeds: listFeeds(db).map((f) => ({
          ...getFeedState(db, f.name),
          stale: isStale(getFeedState(db, f.name)),
          name: f.name,
          kind: f.kind,
          // Credentials in a feed URL (ftp://user:password@host) never leave the store.
          url: safeUrl(f.url),
          intervalSeconds: f.intervalSeconds,
        })),
        pendingNotifications: (
          db.prepare('SELECT COUNT(*) AS n FROM pending_notifications').get() as { n: number }
        ).n,
        lastMailCheckAt,
        lastMailError,
      };
    },
    events(feed) {
      return recentFeedEvents(db, feed);
    },
  };
}

function describeAccepted(decision: Decision, patches: readonly string[]): string {
  if (decision.kind === 'reject')
    return `Rejected as you asked: ${patches.join(', ')}. They will not be applied.`;
  return `Approved: ${patches.join(', ')}. They are set to be applied at the next patch run, which has been started.`;
}
