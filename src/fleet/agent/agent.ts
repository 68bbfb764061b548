/**
 * The agent on one host: takes work meant for its host only (the database refuses anything else),
 * runs it through the host's own durable patch run, and reports outcomes, events and inventory.
 *
 * Order of records, so that nothing runs twice and nothing is lost with the control plane down:
 * claim (control plane) → journal `started` (local, before anything runs) → mark running (control
 * plane, best effort) → run (local, durable, resumable) → journal `finished` → report (retried until
 * the control plane has it) → journal `reported`.
 */
import type pg from 'pg';
import { openPool, type ClientIdentity, type DbEndpoint } from '../control/index.ts';
import type { Db } from '../../store/index.ts';
import { AgentJournal, type JournalEntry, type Outcome } from './journal.ts';

export interface RunRequest {
  workId: number;
  lc: string;
  patches: string[];
}

export interface RunOutcome {
  outcome: Outcome;
  detail: Record<string, unknown>;
}

/** The health of a switched LC's service, as the host sees it now. */
export interface HealthReport {
  healthy: boolean;
  detail: Record<string, unknown>;
}

export interface PendingPackage {
  name: string;
  security: boolean;
}

export interface LcInventory {
  lc: string;
  group: string;
  labels: Record<string, string>;
  services: string[];
  installed: { name: string; version: string }[];
  pending: PendingPackage[];
  lastRun?: { at: string; result: string };
}

/**
 * The host side of the agent: the local patch run and the local inventory. `patch` and `rollback`
 * must be idempotent per workId: called again with the same id (after an agent restart) they
 * resume or report the same local run, never start a second one.
 */
export interface HostRunner {
  patch(request: RunRequest): Promise<RunOutcome>;
  rollback(request: Omit<RunRequest, 'patches'>): Promise<RunOutcome>;
  inventory(): Promise<LcInventory[]>;
  /**
   * The health now of the service a patch run switched (`result` is what the run reported). The
   * agent asks it on every poll while the patch is recent and reports it to the control plane.
   */
  health?(request: { workId: number; lc: string; result: Record<string, unknown> }): Promise<HealthReport>;
}

export interface AgentOptions {
  host: string;
  endpoint: DbEndpoint;
  identity: ClientIdentity;
  /** The agent's journal store (`journal.db`), opened with `agentJournalSchema`; stop() closes it. */
  journal: Db;
  runner: HostRunner;
  /** How many work items run at once on this host (default 1). */
  maxParallel?: number;
  pollMs?: number;
  onError?: (error: unknown) => void;
  /**
   * How long after a patch switched the agent reports its service's health on every poll (ms,
   * default 10 minutes): the control plane's post-switch watch reads these reports.
   */
  healthWindowMs?: number;
  /** Called when a run ends on the host, before its outcome is reported. */
  onOutcome?: (workId: number, outcome: RunOutcome) => void;
}

interface WorkRow {
  id: string;
  rollout_id: string;
  lc: string;
  kind: 'patch' | 'rollback';
  patches: string[];
}

export class FleetAgent {
  readonly journal: AgentJournal;
  private readonly db: pg.Pool;
  private readonly running = new Map<number, Promise<void>>();
  private stopped = false;
  /** Reports go one at a time, so an outcome is never sent twice by two finishing runs. */
  private reporting: Promise<number> = Promise.resolve(0);
  private loop: Promise<void> | undefined;

  constructor(private readonly options: AgentOptions) {
    this.journal = new AgentJournal(options.journal);
    this.db = openPool(options.endpoint, options.identity, 2);
  }

  /** One round: report what finished, resume what was started, take new work up to maxParallel. */
  async pollOnce(): Promise<{ claimed: number; reported: number }> {
    const reported = await this.reportFinished();
    for (const entry of this.journal.inState('started')) this.launch(entry);
    const free = (this.options.maxParallel ?? 1) - this.running.size;
    if (free <= 0) return { claimed: 0, reported };
    // Work claimed earlier whose start was never journaled (the agent stopped in between) has not
    // run anywhere: only this host's role can claim it.
    const held = await this.db.query<WorkRow>(
      `SELECT id, rollout_id, lc, kind, patches FROM fleet.work WHERE state = 'claimed' ORDER BY id LIMIT $1`,
      [free],
    );
    const fresh = held.rows.filter((w) => !this.journal.get(Number(w.id)));
    const more =
      fresh.length < free
        ? (
            await this.db.query<WorkRow>(
              'SELECT id, rollout_id, lc, kind, patches FROM fleet.claim_work($1, $2)',
              [this.options.host, free - fresh.length],
            )
          ).rows
        : [];
    for (const w of [...fresh, ...more]) {
      const entry = { workId: Number(w.id), lc: w.lc, kind: w.kind, patches: w.patches };
      if (this.journal.start(entry)) this.launch({ ...entry, state: 'started' });
    }
    return { claimed: fresh.length + more.length, reported };
  }

  private launch(entry: JournalEntry): void {
    if (this.running.has(entry.workId)) return;
    const task = this.execute(entry).finally(() => this.running.delete(entry.workId));
    this.running.set(entry.workId, task);
  }

  private async execute(entry: JournalEntry): Promise<void> {
    await this.db
      .query(
        `UPDATE fleet.work SET state = 'running', started_at = now() WHERE id = $1 AND state = 'claimed'`,
        [entry.workId],
      )
      .catch((error: unknown) => this.options.onError?.(error)); // the control plane may be down; the run goes on
    let outcome: RunOutcome;
    try {
      outcome =
        entry.kind === 'patch'
          ? await this.options.runner.patch({ workId: entry.workId, lc: entry.lc, patches: entry.patches })
          : await this.options.runner.rollback({ workId: entry.workId, lc: entry.lc });
    } catch (error) {
      outcome = {
        outcome: 'failed',
        detail: { error: error instanceof Error ? error.message : String(error) },
      };
    }
    this.journal.finish(entry.workId, outcome.outcome, outcome.detail, new Date());
    this.options.onOutcome?.(entry.workId, outcome);
    await this.reportFinished().catch((error: unknown) => this.options.onError?.(error));
  }

  /** Sends every finished, unreported outcome; returns how many the control plane now has. */
  reportFinished(): Promise<number> {
    const next = this.reporting.catch(() => 0).then(() => this.sendFinished());
    this.reporting = next;
    return next;
  }

  private async sendFinished(): Promise<number> {
    let n = 0;
    for (const entry of this.journal.inState('finished')) {
      const client = await this.db.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `UPDATE fleet.work SET state = $2, finished_at = $3, result = $4 WHERE id = $1 AND state IN ('claimed','running')`,
          [entry.workId, entry.outcome, entry.finishedAt, entry.result ?? {}],
        );
        if (entry.kind === 'rollback' && entry.outcome === 'succeeded')
          await client.query(
            `UPDATE fleet.work p SET state = 'reverted' FROM fleet.work r
             WHERE r.id = $1 AND p.rollout_id = r.rollout_id AND p.lc = r.lc AND p.kind = 'patch' AND p.state = 'succeeded'`,
            [entry.workId],
          );
        await client.query(
          `INSERT INTO fleet.reports (host_id, work_id, kind, body) VALUES ($1, $2, 'event', $3)`,
          [
            this.options.host,
            entry.workId,
            { type: `${entry.kind}-${entry.outcome ?? 'unknown'}`, lc: entry.lc, ...entry.result },
          ],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      this.journal.markReported(entry.workId);
      n += 1;
    }
    return n;
  }

  /**
   * Reports the health of every service a patch switched within the health window; a report the
   * control plane cannot take now is not kept (the next poll makes a fresh one). Returns how many
   * were sent.
   */
  async reportHealth(now: Date = new Date()): Promise<number> {
    const health = this.options.runner.health?.bind(this.options.runner);
    if (!health) return 0;
    const since = new Date(now.getTime() - (this.options.healthWindowMs ?? 600_000));
    let n = 0;
    for (const entry of this.journal.switchedSince(since)) {
      let report: HealthReport;
      try {
        report = await health({ workId: entry.workId, lc: entry.lc, result: entry.result ?? {} });
      } catch (error) {
        report = {
          healthy: false,
          detail: { error: error instanceof Error ? error.message : String(error) },
        };
      }
      await this.db.query(
        `INSERT INTO fleet.reports (host_id, work_id, kind, body) VALUES ($1, $2, 'health', $3)`,
        // The fleet's name of the LC comes last: a runner's detail must not rename it (it may name the
        // LC now serving, e.g. the standby, under `servedBy`).
        [this.options.host, entry.workId, { ...report.detail, lc: entry.lc, healthy: report.healthy }],
      );
      n += 1;
    }
    return n;
  }

  /** Sends the host's LCs, services, installed and pending packages. */
  async reportInventory(): Promise<number> {
    const lcs = await this.options.runner.inventory();
    for (const lc of lcs)
      await this.db.query(
        `INSERT INTO fleet.inventory (host_id, lc, body, reported_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (host_id, lc) DO UPDATE SET body = $3, reported_at = now()`,
        [this.options.host, lc.lc, lc],
      );
    return lcs.length;
  }

  /** Polls until stop(); errors (control plane down) are passed to onError and the loop goes on. */
  start(): void {
    const pollMs = this.options.pollMs ?? 2_000;
    this.loop = (async () => {
      let inventoryDue = true;
      while (!this.stopped) {
        try {
          if (inventoryDue) {
            await this.reportInventory();
            inventoryDue = false;
          }
          await this.pollOnce();
          await this.reportHealth();
        } catch (error) {
          this.options.onError?.(error);
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    })();
  }

  /** Stops polling and waits for the runs in progress (they are local and must end cleanly). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.allSettled([...this.running.values()]);
    await this.db.end();
    this.journal.close();
  }

  /** Runs in progress now (for tests and status). */
  inProgress(): number {
    return this.running.size;
  }
}
