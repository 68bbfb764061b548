/**
 * The control plane's scheduler on graphile-worker: `fleet_tick` moves one rollout a step and
 * schedules its next tick (one pending tick per rollout, by job key); `fleet_dispatch` makes the
 * work rows of a batch of up to 500 targets in one statement; a failed batch is retried by
 * graphile-worker with its backoff, and a retry never makes a row twice.
 */
import pg from 'pg';
import { makeWorkerUtils, run, Logger, type Runner, type Task, type WorkerUtils } from 'graphile-worker';
// graphile-worker retries its own bookkeeping queries only for the error codes in this table; a
// PostgreSQL restart (admin shutdown, refused or reset connections) is added so that completing or
// failing a job rides over a restart instead of rejecting unhandled.
import { RETRYABLE_ERROR_CODES } from 'graphile-worker/dist/lib.js';
import { createHash } from 'node:crypto';
import {
  batchJobs,
  insertWorkBatch,
  tickRollout,
  type DispatchBatch,
  type DispatchJob,
  type DispatchQueue,
} from './rollouts.ts';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface ControlWorkerOptions {
  db: pg.Pool;
  clock?: Clock;
  /** How often a rollout that waits on agents is looked at again (ms). */
  tickMs?: number;
  concurrency?: number;
  /** How often graphile-worker looks for due jobs when no notification arrives (ms). */
  pollIntervalMs?: number;
}

export interface ControlWorker {
  queue: DispatchQueue;
  /** Starts ticking a rollout now. */
  kick(rolloutId: number): Promise<void>;
  stop(): Promise<void>;
  utils: WorkerUtils;
}

const restartDelay = { minDelay: 500, maxDelay: 10_000 };
for (const code of ['57P01', '57P02', '08006', '08003', '08001', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE'])
  (RETRYABLE_ERROR_CODES as Record<string, typeof restartDelay>)[code] ??= restartDelay;

const quietLogger = new Logger(() => () => undefined);

/**
 * pg rejects a query whose connection the server dropped with an Error that has no code
 * ("Connection terminated unexpectedly"), which graphile-worker's retry table cannot match; and
 * graphile-worker does not await the query that fails a job, so such a rejection would go
 * unhandled and end the process. The scheduler's clients give those errors PostgreSQL's
 * connection_failure code (08006), which the table above retries.
 */
class ConnectionLossCodedClient extends pg.Client {
  override query(...args: unknown[]): never {
    const result = (super.query as (...a: unknown[]) => unknown)(...args);
    if (result instanceof Promise)
      return result.catch((e: unknown) => Promise.reject(codeConnectionLoss(e))) as never;
    return result as never;
  }
}

const connectionLossMessages =
  /^(Connection terminated|Client has encountered a connection error|Client was closed)/;

function codeConnectionLoss(e: unknown): unknown {
  if (
    e instanceof Error &&
    (e as { code?: unknown }).code === undefined &&
    connectionLossMessages.test(e.message)
  )
    Object.assign(e, { code: '08006' });
  return e;
}

/** A pool for graphile-worker with the same settings as `db` and connection losses coded. */
function schedulerPool(db: pg.Pool, max: number): pg.Pool {
  const pool = new pg.Pool({ ...db.options, max, Client: ConnectionLossCodedClient });
  // An idle client whose server went away emits 'error'; the next checkout reconnects.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/**
 * graphile-worker's utilities on a scheduler pool, its schema migrated; `release` ends both (also
 * when opening failed half-way).
 */
async function openScheduler(
  db: pg.Pool,
  max: number,
): Promise<{ pool: pg.Pool; utils: WorkerUtils; release(): Promise<void> }> {
  const pool = schedulerPool(db, max);
  const end = async (utils: WorkerUtils | undefined): Promise<void> => {
    await utils?.release();
    await pool.end();
  };
  let utils: WorkerUtils | undefined;
  try {
    utils = await makeWorkerUtils({ pgPool: pool, logger: quietLogger });
    await utils.migrate();
  } catch (e) {
    await end(utils);
    throw e;
  }
  const opened = utils;
  return { pool, utils: opened, release: () => end(opened) };
}

/**
 * Targets per `fleet_dispatch` job. One job per target costs graphile-worker a fetch, a run and a
 * completion (three commits) per host; one job per batch makes a wave's rows in a few statements.
 */
export const dispatchBatchSize = 500;

function graphileQueue(utils: WorkerUtils): DispatchQueue {
  return {
    async dispatch(jobs: readonly DispatchJob[]) {
      const batches = batchJobs(jobs, dispatchBatchSize);
      if (batches.length === 0) return;
      await utils.addJobs(
        batches.map((batch) => ({
          identifier: 'fleet_dispatch',
          payload: batch,
          // The same targets dispatched again while the first job waits make no second job.
          jobKey: `dispatch:${batch.rolloutId}:${batch.kind}:${batch.wave}:${batchDigest(batch)}`,
          maxAttempts: 10,
        })),
      );
    },
  };
}

const batchDigest = (batch: DispatchBatch): string =>
  createHash('sha256')
    .update(batch.targets.map((t) => `${t.host}/${t.lc}`).join('\n'))
    .digest('hex')
    .slice(0, 32);

/**
 * The job queue without a worker (for the CLI): dispatch and kick add jobs that the running
 * control plane (`understudy control run`) executes.
 */
export async function openJobQueue(
  db: pg.Pool,
): Promise<{ queue: DispatchQueue; kick(rolloutId: number): Promise<void>; release(): Promise<void> }> {
  const { utils, release } = await openScheduler(db, 2);
  return {
    queue: graphileQueue(utils),
    kick: async (rolloutId) => {
      await utils.addJob(
        'fleet_tick',
        { rolloutId },
        { jobKey: `tick:${rolloutId}`, jobKeyMode: 'replace', maxAttempts: 25 },
      );
    },
    release,
  };
}

/** Starts graphile-worker (migrating its own schema) with the fleet's tasks. */
export async function startControlWorker(options: ControlWorkerOptions): Promise<ControlWorker> {
  const clock = options.clock ?? systemClock;
  const tickMs = options.tickMs ?? 5_000;
  const concurrency = options.concurrency ?? 4;
  const { pool, utils, release } = await openScheduler(options.db, concurrency + 4);
  const queue = graphileQueue(utils);

  const scheduleTick = async (rolloutId: number, at: Date): Promise<void> => {
    await utils.addJob(
      'fleet_tick',
      { rolloutId },
      { jobKey: `tick:${rolloutId}`, jobKeyMode: 'replace', runAt: at, maxAttempts: 25 },
    );
  };

  const tick: Task = async (payload) => {
    const { rolloutId } = payload as { rolloutId: number };
    const now = clock.now();
    const decision = await tickRollout(options.db, queue, rolloutId, now);
    if (
      decision.kind === 'complete' ||
      decision.kind === 'halt' ||
      (decision.kind === 'idle' && decision.state !== 'paused')
    )
      return;
    const soon = new Date(Date.now() + tickMs);
    // A wait with a known end (window opening, watch turning green) is looked at again then, or
    // sooner so that a paused rollout resumed or agents finishing are seen within tickMs.
    const at =
      decision.kind === 'wait' && decision.until && decision.until.getTime() - now.getTime() < tickMs
        ? new Date(Date.now() + Math.max(0, decision.until.getTime() - now.getTime()))
        : soon;
    await scheduleTick(rolloutId, at);
  };

  const dispatch: Task = async (payload) => {
    await insertWorkBatch(options.db, payload as DispatchBatch);
  };

  let runner: Runner;
  try {
    runner = await run({
      pgPool: pool,
      taskList: { fleet_tick: tick, fleet_dispatch: dispatch },
      concurrency,
      pollInterval: options.pollIntervalMs ?? 500,
      noHandleSignals: true,
      logger: quietLogger,
    });
  } catch (e) {
    await release();
    throw e;
  }

  return {
    queue,
    utils,
    kick: (rolloutId) => scheduleTick(rolloutId, new Date()),
    async stop() {
      await runner.stop();
      await release();
    },
  };
}
