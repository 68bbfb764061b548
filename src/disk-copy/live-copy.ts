/**
 * The live disk copy (seed steps 703/704, Fig. 8–10), written once above the disk store's copy
 * primitives (copy-session.ts): copies a running LC's disk while the LC keeps writing, and ends with
 * a writable copy identical to the source at a chosen moment, the cut.
 *
 * send-receive mode: read-only snapshot → full send → incremental catch-up passes of what was written
 * meanwhile (their changes are the write history, recorded as they pass) → when a pass is small, the
 * cut: the writers frozen only while the final snapshot is taken → last incremental pass → a writable
 * clone of it becomes the destination (live-copy-passes.ts). snapshot mode: the cut is a snapshot on
 * the same filesystem, cloned in place.
 *
 * Contract: the source is never modified (only read-only snapshots of it are taken, and removed at the
 * end); the writers are always thawed and any throttle lifted before the copy settles; on failure or
 * cancel every snapshot and the partial destination are removed. The job, its history and its result
 * are recorded when a db is given, and the job is leased to this process until it ends.
 */
import { UnderstudyError, isUnderstudyError, silentLogger, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { CopyPrimitives, CopySession } from './copy-session.ts';
import type { DiskRef } from './disk-store.ts';
import { HistoryRecorder, describeHistory } from './history.ts';
import { cutInPlace, sendPasses, type PassContext } from './live-copy-passes.ts';
import { resolvePolicy } from './policy.ts';
import { appendCopyHistory, failCopyJob, finishCopyJob, insertCopyJob } from './store.ts';
import { differingPaths } from './tree-hash.ts';
import type {
  CopyMode,
  CopyPolicy,
  CopyProgress,
  CopyResult,
  Freezer,
  PassReport,
  Throttle,
} from './types.ts';

/** What a live copy does besides the two disks (the same for every store). */
export interface LiveCopyJobOptions {
  /** Names the job's snapshots and its record; unique among running copies. */
  jobId: string;
  /** Free text kept with the job, e.g. "lc1/system → lc2/system". */
  label?: string;
  /** Stops the source's writers for the freeze point of the cut. */
  freezer: Freezer;
  /** Limits the source's writers when the copy does not converge. */
  throttle?: Throttle;
  /** Compare both trees at the cut and fail unless they are equal. */
  verify?: boolean;
  /** When to cut and what to do when the writers outpace the copy (defaults: see CopyPolicy). */
  policy?: CopyPolicy;
  /** Where the job and its write history are recorded. */
  db?: Db;
  signal?: AbortSignal;
  logger?: Logger;
  onProgress?: (event: CopyProgress) => void;
}

export interface LiveCopyOptions extends Omit<LiveCopyJobOptions, 'verify'> {
  from: DiskRef;
  /** Receives the copy; its current content must have been set aside (or be absent). */
  to: DiskRef;
  verify: boolean;
  /** Default `auto`: the store picks. */
  mode?: 'auto' | CopyMode;
  /** See OpenCopyOptions.ownTree (default false). */
  ownTree?: boolean;
}

/**
 * Copies the disk `from` onto `to` live, over `store`'s copy primitives; see the file comment for the
 * contract. Throws DISK_COPY_SOURCE_INVALID, DISK_COPY_DESTINATION_INVALID, POOL_FULL,
 * DISK_COPY_CANCELLED, DISK_COPY_NOT_CONVERGED, DISK_COPY_FREEZE_FAILED, DISK_COPY_VERIFY_FAILED or
 * DISK_COPY_FAILED.
 */
export function copyLive(store: CopyPrimitives<DiskRef>, options: LiveCopyOptions): Promise<CopyResult> {
  const { from, to, mode, ownTree, ...job } = options;
  return runLiveCopy({
    ...job,
    open: () =>
      store.openCopy({
        from,
        to,
        jobId: options.jobId,
        ...(mode ? { mode } : {}),
        ...(ownTree ? { ownTree } : {}),
      }),
  });
}

function cancelledError(source: string, cause?: unknown): UnderstudyError {
  return new UnderstudyError(
    'DISK_COPY_CANCELLED',
    `Copy of ${source} was cancelled; the partial copy was removed`,
    { cause },
  );
}

/**
 * The copy job around the passes: checks the options, opens the store's session (`open`), records
 * the job, runs the passes of the session's mode, verifies, and cleans up on failure.
 */
export async function runLiveCopy(
  options: LiveCopyJobOptions & { open: () => Promise<CopySession> },
): Promise<CopyResult> {
  const logger = options.logger ?? silentLogger;
  const started = performance.now();
  const { jobId, db } = options;
  if (!/^[\w-]{1,40}$/.test(jobId))
    throw new UnderstudyError('INVALID_ARGUMENT', `Invalid copy job id ${jobId}`);
  const policy = resolvePolicy(options.policy, options.throttle !== undefined);
  const session = await options.open();
  const { mode, names } = session;
  const recorder = new HistoryRecorder();
  const passes: PassReport[] = [];
  let stored = 0;
  let destinationCreated = false;
  const ctx: PassContext = {
    jobId,
    session,
    freezer: options.freezer,
    ...(options.throttle ? { throttle: options.throttle } : {}),
    policy,
    recorder,
    passes,
    ...(options.signal ? { signal: options.signal } : {}),
    logger,
    throwIfCancelled() {
      if (options.signal?.aborted) throw cancelledError(names.source, options.signal.reason);
    },
    progress(event) {
      options.onProgress?.({ jobId, elapsedMs: performance.now() - started, ...event });
    },
    flushHistory() {
      if (!db || recorder.records.length === stored) return;
      appendCopyHistory(db, jobId, stored, recorder.recordsSince(stored));
      stored = recorder.records.length;
    },
    destinationCreated() {
      destinationCreated = true;
    },
  };
  if (db) {
    insertCopyJob(db, {
      id: jobId,
      ...(options.label === undefined ? {} : { label: options.label }),
      source: names.source,
      destination: names.destination,
      mode,
      sourceStage: names.sourceStage,
      destinationStage: names.destinationStage,
    });
  }
  logger.info({ jobId, source: names.source, destination: names.destination, mode }, 'disk copy started');
  try {
    ctx.progress({ phase: 'preparing', pass: 0, bytesDone: 0, bytesTotal: null, bytesPerSecond: 0 });
    await session.prepare();
    ctx.throwIfCancelled();
    const outcome = mode === 'snapshot' ? await cutInPlace(ctx) : await sendPasses(ctx);
    ctx.flushHistory();
    let verification: CopyResult['verification'];
    if (options.verify) {
      ctx.throwIfCancelled();
      ctx.progress({
        phase: 'verifying',
        pass: passes.length,
        bytesDone: 0,
        bytesTotal: null,
        bytesPerSecond: 0,
      });
      const diffClone = mode === 'snapshot' ? session.diffClone?.bind(session) : undefined;
      verification = diffClone
        ? await verifyClone(session, diffClone, outcome.cut)
        : await verifyByHash(session, outcome.cut);
      ctx.throwIfCancelled();
    }
    const syncBase = await session.finish(outcome.cut);
    const summary = recorder.summary();
    const result: CopyResult = {
      jobId,
      mode,
      source: names.source,
      destination: names.destination,
      cutAt: outcome.cutAt,
      freezeMs: outcome.freezeMs,
      freezeAttempts: outcome.freezeAttempts,
      convergence: outcome.convergence,
      throttledMs: outcome.throttledMs,
      passes,
      bytesSent: passes.reduce((sum, p) => sum + p.bytes, 0),
      durationMs: performance.now() - started,
      history: { ...summary, text: describeHistory(summary) },
      records: recorder.records,
      ...(verification ? { verification } : {}),
      ...(syncBase ? { syncBase } : {}),
    };
    if (db) finishCopyJob(db, jobId, result);
    ctx.progress({
      phase: 'done',
      pass: passes.length,
      bytesDone: result.bytesSent,
      bytesTotal: result.bytesSent,
      bytesPerSecond: 0,
    });
    logger.info(
      { jobId, freezeMs: result.freezeMs, passes: result.passes.length, convergence: result.convergence },
      'disk copy done',
    );
    return result;
  } catch (caught) {
    let error =
      options.signal?.aborted && !isUnderstudyError(caught, 'DISK_COPY_CANCELLED')
        ? cancelledError(names.source, caught)
        : caught;
    error = await session.explainFailure(error);
    if (!(error instanceof UnderstudyError)) {
      error = new UnderstudyError(
        'DISK_COPY_FAILED',
        `Copy of ${names.source} to ${names.destination} failed: ${String((error as Error).message ?? error)}`,
        { cause: error },
      );
    }
    logger.warn({ jobId, err: error }, 'disk copy failed; removing the partial copy');
    // Cleanup runs to the end even if one part fails; the cleanup errors are reported with the cause.
    const cleanupErrors = await session.discard({ destinationCreated });
    const failure = error as UnderstudyError;
    if (db) {
      ctx.flushHistory();
      failCopyJob(db, jobId, failure.code === 'DISK_COPY_CANCELLED' ? 'cancelled' : 'failed', {
        code: failure.code,
        message: failure.message,
      });
    }
    if (cleanupErrors.length) failure.details.cleanupErrors = cleanupErrors.map(String);
    throw failure;
  }
}

type Verification = NonNullable<CopyResult['verification']>;

/** Both trees hashed: the copy must hash as the source's snapshot at the cut. */
async function verifyByHash(session: CopySession, cut: string): Promise<Verification> {
  const [expected, actual] = await Promise.all([
    session.hash({ snapshot: cut }),
    session.hash('destination'),
  ]);
  if (expected.digest !== actual.digest)
    throw verifyFailed(session, differingPaths(expected, actual), {
      sourceDigest: expected.digest,
      destinationDigest: actual.digest,
    });
  return {
    method: 'tree-hash',
    digest: actual.digest,
    entries: actual.entries,
    bytes: actual.bytes,
    durationMs: Math.max(expected.durationMs, actual.durationMs),
  };
}

/**
 * Snapshot mode: the destination is a clone of the cut on the same filesystem, so the store's own
 * comparison of the two trees proves them equal without reading the disk twice (hashing both trees
 * costs the whole disk's content in sha256, twice, in the manager's process).
 */
async function verifyClone(
  session: CopySession,
  diffClone: NonNullable<CopySession['diffClone']>,
  cut: string,
): Promise<Verification> {
  const started = performance.now();
  const differing = await diffClone(cut, 10);
  if (differing.length > 0) throw verifyFailed(session, differing, {});
  return {
    method: 'clone-diff',
    digest: null,
    entries: null,
    bytes: 0,
    durationMs: performance.now() - started,
  };
}

function verifyFailed(
  session: CopySession,
  differing: string[],
  details: Record<string, unknown>,
): UnderstudyError {
  const { names } = session;
  return new UnderstudyError(
    'DISK_COPY_VERIFY_FAILED',
    `The copy ${names.destination} differs from ${names.source} at the cut; differing paths: ${differing.join(', ')}`,
    { details },
  );
}
