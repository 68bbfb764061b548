/**
 * The agent's host runner on the host's own patch run: work from the control plane becomes a
 * patch run (or a rollback) through the composition root, exactly as `understudy run` makes one,
 * so the run is durable on the host (its steps journalled in the host's store, resumed by the
 * recovery at start) and finishes or reverses safely with the control plane down.
 *
 * Idempotent per work id: the run's id is recorded for the work id the moment the run exists (its
 * first event), in a SQLite file of the agent's own; a work id seen again (the agent restarted)
 * resumes or reports that run and never starts a second one.
 */
import { isUnderstudyError, silentLogger, type Logger } from '../../core/index.ts';
import type { App } from '../../app/index.ts';
import type { Db, ModuleSchema } from '../../store/index.ts';
import { listLcs } from '../../inventory/index.ts';
import {
  checkRunServiceHealth,
  getRun,
  listRuns,
  resumeRun,
  rollbackRun,
  startRun,
  type RunDeps,
  type RunOptions,
  type RunRecord,
} from '../../run/index.ts';
import type { HealthReport, HostRunner, LcInventory, RunOutcome, RunRequest } from './agent.ts';

/**
 * The table of work ids and their runs. `IF NOT EXISTS`: a file written before the table had a
 * migration opens unchanged.
 */
export const agentRunsSchema: ModuleSchema = {
  module: 'agent-runs',
  migrations: [
    {
      version: 1,
      description: "the host's run for each work id",
      up: `CREATE TABLE IF NOT EXISTS work_runs (
        work_id INTEGER NOT NULL, kind TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (work_id, kind))`,
    },
  ],
};

/** Run options the agent applies to every patch run of this host (the CLI's `run` options). */
export type AgentRunOptions = Omit<RunOptions, 'lc' | 'patches'>;

export interface AppRunnerOptions {
  app: App;
  /**
   * The agent's store that maps work ids to the host's run ids (`runs.db` in its directory), opened
   * with `agentRunsSchema`; the runner's close() closes it.
   */
  runs: Db;
  runOptions?: AgentRunOptions;
  /** Group and labels of this host's LCs, as the control plane targets them. */
  group?: string;
  labels?: Record<string, string>;
  logger?: Logger;
  /** Every event of every run (progress, for the agent's log). */
  onEvent?: RunDeps['onEvent'];
}

/** What the control plane learns of a run: its id, state and figures. */
export function runSummary(run: RunRecord): Record<string, unknown> {
  const sw = run.facts.switchResult;
  return {
    runId: run.id,
    lc: run.lc,
    standby: run.standby,
    state: run.state,
    patches: run.options.patches,
    ...(run.error ? { error: run.error.split('\n')[0] } : {}),
    durationMs: run.steps.reduce((sum, s) => sum + (s.durationMs ?? 0), 0),
    steps: run.steps.map((s) => ({ name: s.name, state: s.state, durationMs: s.durationMs })),
    ...(run.facts.versionBefore ? { versionBefore: run.facts.versionBefore } : {}),
    ...(run.facts.versionAfter ? { versionAfter: run.facts.versionAfter } : {}),
    ...(run.facts.copies
      ? { copies: run.facts.copies.map((c) => ({ disk: c.disk, freezeMs: c.freezeMs, bytes: c.bytes })) }
      : {}),
    ...(sw ? { switch: { method: sw.method, durationMs: sw.durationMs } } : {}),
  };
}

/** A patch run's state as a work outcome: switched → succeeded, rolled back → reverted. */
function patchOutcome(run: RunRecord): RunOutcome['outcome'] {
  if (run.state === 'switched') return 'succeeded';
  if (run.state === 'rolled-back') return 'reverted';
  return 'failed';
}

const finalRunStates = new Set(['switched', 'failed', 'rolled-back']);

export class AppHostRunner implements HostRunner {
  private readonly runs: Db;
  private deps: Promise<RunDeps> | undefined;

  constructor(private readonly options: AppRunnerOptions) {
    this.runs = options.runs;
  }

  /** The host's run dependencies; the first call runs the recovery at start (once per process). */
  private runDeps(): Promise<RunDeps> {
    this.deps ??= (async () => {
      const logger = this.options.logger ?? silentLogger;
      const host = await this.options.app.start({ logger });
      return {
        db: this.options.app.db,
        host,
        catalogue: this.options.app.catalogue,
        logger,
        owner: this.options.app.owner,
      };
    })();
    return this.deps;
  }

  private runOf(workId: number, kind: 'patch' | 'rollback'): string | undefined {
    const row = this.runs
      .prepare('SELECT run_id FROM work_runs WHERE work_id = ? AND kind = ?')
      .get(workId, kind) as { run_id: string } | undefined;
    return row?.run_id;
  }

  private remember(workId: number, kind: 'patch' | 'rollback', runId: string): void {
    this.runs
      .prepare('INSERT OR IGNORE INTO work_runs (work_id, kind, run_id) VALUES (?, ?, ?)')
      .run(workId, kind, runId);
  }

  /** Deps whose events record the run for the work id as soon as the run exists. */
  private async tracked(workId: number, kind: 'patch' | 'rollback'): Promise<RunDeps> {
    const deps = await this.runDeps();
    return {
      ...deps,
      onEvent: (event) => {
        this.remember(workId, kind, event.runId);
        this.options.onEvent?.(event);
      },
    };
  }

  async patch(request: RunRequest): Promise<RunOutcome> {
    const deps = await this.tracked(request.workId, 'patch');
    const known = this.runOf(request.workId, 'patch');
    try {
      const run = known
        ? finalRunStates.has(getRun(deps.db, known).state)
          ? getRun(deps.db, known)
          : await resumeRun(known, deps)
        : await startRun({ ...this.options.runOptions, lc: request.lc, patches: request.patches }, deps);
      return { outcome: patchOutcome(run), detail: runSummary(run) };
    } catch (error) {
      const runId = this.runOf(request.workId, 'patch');
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      if (runId === undefined)
        return {
          outcome: 'failed',
          detail: {
            lc: request.lc,
            error: message,
            ...(isUnderstudyError(error) ? { code: error.code } : {}),
          },
        };
      const run = getRun(deps.db, runId);
      return { outcome: patchOutcome(run), detail: { ...runSummary(run), error: message } };
    }
  }

  async rollback(request: Omit<RunRequest, 'patches'>): Promise<RunOutcome> {
    const deps = await this.tracked(request.workId, 'rollback');
    const known = this.runOf(request.workId, 'rollback');
    // The run to roll back: the newest run of this LC that switched (or is rolling back).
    const target =
      known ??
      listRuns(deps.db).find(
        (r) => r.lc === request.lc && (r.state === 'switched' || r.state === 'rolling-back'),
      )?.id;
    if (target === undefined)
      return {
        outcome: 'failed',
        detail: { lc: request.lc, error: `no switched run of ${request.lc} to roll back on this host` },
      };
    this.remember(request.workId, 'rollback', target);
    try {
      const current = getRun(deps.db, target);
      const run = current.state === 'rolled-back' ? current : await rollbackRun(target, deps);
      return {
        outcome: run.state === 'rolled-back' ? 'succeeded' : 'failed',
        detail: runSummary(run),
      };
    } catch (error) {
      const run = getRun(deps.db, target);
      return {
        outcome: run.state === 'rolled-back' ? 'succeeded' : 'failed',
        detail: {
          ...runSummary(run),
          error: error instanceof Error ? error.message.split('\n')[0] : String(error),
        },
      };
    }
  }

  /**
   * The switched service's health, from this host: the declared check of the service the run moved
   * (HTTP path and expected status at its port, a TCP connect, or its command inside the LC now
   * serving), once, within 3 s, at the run's service address, by the run's own implementation
   * (run's checkRunServiceHealth, the one the API and the run's watch use). `servedBy` names the LC
   * the run put in service; `version` is the version the run found there after its switch.
   */
  async health(request: {
    workId: number;
    lc: string;
    result: Record<string, unknown>;
  }): Promise<HealthReport> {
    const runId =
      typeof request.result.runId === 'string' ? request.result.runId : this.runOf(request.workId, 'patch');
    if (runId === undefined) return { healthy: false, detail: { error: 'no run recorded for this work' } };
    const { host } = await this.runDeps();
    const run = getRun(this.options.app.db, runId);
    const health = await checkRunServiceHealth({ host, run, timeoutMs: 3000 });
    return {
      healthy: health.state === 'healthy',
      detail: {
        runId,
        service: health.service,
        check: health.check,
        url: health.url,
        state: health.state,
        status: health.status,
        ms: health.ms,
        ...(health.error === null ? {} : { error: health.error }),
        servedBy: run.standby,
        version: run.facts.versionAfter ?? null,
      },
    };
  }

  /** The host's serving LCs with their patches: applied ones as installed, the others as pending. */
  async inventory(): Promise<LcInventory[]> {
    const { db, catalogue } = this.options.app;
    const runs = listRuns(db);
    const patches = catalogue.listPatches();
    return listLcs(db)
      .filter((lc) => lc.role === 'active')
      .map((lc) => {
        const applied = new Set(
          catalogue
            .lcStates({ lc: lc.name })
            .filter((s) => s.appliedAt !== null)
            .map((s) => s.patch),
        );
        const last = runs.find((r) => r.lc === lc.name && r.finishedAt !== null);
        return {
          lc: lc.name,
          group: this.options.group ?? 'default',
          labels: this.options.labels ?? {},
          services: lc.nics.flatMap((n) => n.addresses),
          installed: patches
            .filter((p) => applied.has(p.name))
            .map((p) => ({ name: p.name, version: p.version ?? '' })),
          pending: patches
            .filter((p) => !applied.has(p.name))
            .map((p) => ({ name: p.name, security: p.categories.includes('security') })),
          ...(last?.finishedAt ? { lastRun: { at: last.finishedAt, result: last.state } } : {}),
        };
      });
  }

  close(): void {
    this.runs.close();
  }
}
