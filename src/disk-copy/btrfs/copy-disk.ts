/**
 * The live disk copy (seed steps 703/704, Fig. 8–10): copies a running LC's disk while the LC keeps
 * writing, and ends with a writable copy identical to the source at a chosen moment, the cut.
 *
 * send-receive mode: read-only snapshot → full `btrfs send | receive` → incremental catch-up passes of
 * what was written meanwhile (their streams are the write history, recorded as they pass) → when a
 * pass is small, the cut: freeze the writers only while the final snapshot is taken → last incremental
 * pass → a writable snapshot of it becomes the destination. snapshot mode: the cut is a copy-on-write
 * snapshot on the same filesystem.
 *
 * Contract: the source is never modified (only read-only snapshots of it are taken, in a staging
 * directory beside it, and removed at the end); the writers are always thawed and any throttle lifted
 * before copyDisk settles; on failure or cancel every snapshot and the partial destination are removed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnderstudyError, exec, isUnderstudyError, silentLogger } from '../../core/index.ts';
import {
  deleteSubvolume,
  filesystemId,
  freeBytes,
  isBtrfs,
  isSubvolume,
  removeStagingDir,
  snapshot,
  usedBytes,
} from './btrfs.ts';
import { HistoryRecorder, describeHistory, formatBytes } from '../history.ts';
import { resolvePolicy } from '../policy.ts';
import type { CopyJobContext, CutOutcome } from './job-context.ts';
import { runSendReceive } from './send-receive.ts';
import { appendCopyHistory, failCopyJob, finishCopyJob, insertCopyJob } from '../store.ts';
import { differingPaths, hashTree } from '../tree-hash.ts';
import { whileFrozen } from '../freeze.ts';
import type { CopyDiskOptions, CopyMode, CopyResult, ResolvedCopyPolicy } from '../types.ts';

const NAME_PATTERN = /^[A-Za-z0-9][\w.-]{0,99}$/;

function cancelledError(ctx: { source: string }, cause?: unknown): UnderstudyError {
  return new UnderstudyError(
    'DISK_COPY_CANCELLED',
    `Copy of ${ctx.source} was cancelled; the partial copy was removed`,
    { cause },
  );
}

async function resolveMode(options: CopyDiskOptions): Promise<CopyMode> {
  const sameFs = (await filesystemId(options.source)) === (await filesystemId(options.destination.poolPath));
  const mode = options.mode ?? 'auto';
  if (mode === 'auto') return sameFs ? 'snapshot' : 'send-receive';
  if (mode === 'snapshot' && !sameFs) {
    throw new UnderstudyError(
      'DISK_COPY_DESTINATION_INVALID',
      `Snapshot mode needs ${options.destination.poolPath} on the same btrfs filesystem as ${options.source}`,
      {
        hint: 'Use mode send-receive (or auto) to copy to another pool.',
      },
    );
  }
  return mode;
}

async function validate(options: CopyDiskOptions): Promise<void> {
  if (!(await isSubvolume(options.source))) {
    throw new UnderstudyError('DISK_COPY_SOURCE_INVALID', `${options.source} is not a btrfs subvolume`);
  }
  const { poolPath, name } = options.destination;
  if (!NAME_PATTERN.test(name)) {
    throw new UnderstudyError('INVALID_ARGUMENT', `Invalid destination name ${JSON.stringify(name)}`, {
      hint: 'Use letters, digits, ".", "_" and "-".',
    });
  }
  try {
    if (!(await fs.stat(poolPath)).isDirectory() || !(await isBtrfs(poolPath))) throw new Error('not btrfs');
  } catch (error) {
    throw new UnderstudyError(
      'DISK_COPY_DESTINATION_INVALID',
      `The destination pool ${poolPath} is not a directory on a btrfs filesystem`,
      { cause: error },
    );
  }
  const target = path.join(poolPath, name);
  const exists = await fs.lstat(target).then(
    () => true,
    () => false,
  );
  if (exists)
    throw new UnderstudyError('DISK_COPY_DESTINATION_INVALID', `The destination ${target} already exists`, {
      hint: 'Remove it, or choose another name.',
    });
}

/** Maps an ENOSPC from btrfs receive to POOL_FULL naming the pool and the space missing. */
async function explainFailure(error: unknown, ctx: CopyJobContext): Promise<unknown> {
  if (
    !isUnderstudyError(error, 'DISK_COPY_FAILED') ||
    !/No space left on device/i.test(String(error.details.stderr ?? error.message))
  )
    return error;
  const needed = await usedBytes(ctx.source).catch(() => 0);
  const free = await freeBytes(ctx.poolPath).catch(() => 0);
  const missing = Math.max(0, needed - free);
  return new UnderstudyError(
    'POOL_FULL',
    `The destination pool ${ctx.poolPath} ran out of space during the copy of ${ctx.source}: about ${formatBytes(missing || needed)} missing`,
    {
      cause: error,
      details: { pool: ctx.poolPath, freeBytes: free, neededBytes: needed, missingBytes: missing },
    },
  );
}

async function runSnapshotMode(ctx: CopyJobContext, policy: ResolvedCopyPolicy): Promise<CutOutcome> {
  const cut = path.join(ctx.sourceStage, 'cut');
  ctx.progress({ phase: 'cut', pass: 0, bytesDone: 0, bytesTotal: null, bytesPerSecond: 0 });
  // Flush dirty data first so that the snapshot inside the freeze has little left to write.
  await exec(['btrfs', 'filesystem', 'sync', ctx.source]);
  let cutAt = '';
  const frozen = await whileFrozen(
    ctx.options.freezer,
    { what: ctx.source, ...(policy.freezeTimeoutMs ? { timeoutMs: policy.freezeTimeoutMs } : {}) },
    async () => {
      await snapshot({ source: ctx.source, target: cut, readOnly: true });
      cutAt = new Date().toISOString();
    },
  );
  await snapshot({ source: cut, target: ctx.destination, readOnly: false });
  return {
    cutSnapshot: cut,
    receivedCut: cut,
    cutAt,
    freezeMs: frozen.frozenMs,
    freezeAttempts: frozen.attempts,
    convergence: 'instant',
    throttledMs: 0,
  };
}

/**
 * Copies a live disk; see the file comment for the contract. Throws DISK_COPY_SOURCE_INVALID,
 * DISK_COPY_DESTINATION_INVALID, POOL_FULL, DISK_COPY_CANCELLED, DISK_COPY_NOT_CONVERGED,
 * DISK_COPY_VERIFY_FAILED or DISK_COPY_FAILED.
 */
export async function copyDisk(options: CopyDiskOptions): Promise<CopyResult> {
  const logger = options.logger ?? silentLogger;
  const started = performance.now();
  const jobId = options.jobId ?? randomBytes(4).toString('hex');
  if (!/^[\w-]{1,40}$/.test(jobId))
    throw new UnderstudyError('INVALID_ARGUMENT', `Invalid copy job id ${jobId}`);
  const policy = resolvePolicy(options.policy, options.throttle !== undefined);
  await validate(options);
  const mode = await resolveMode(options);
  const poolPath = path.resolve(options.destination.poolPath);
  const source = path.resolve(options.source);
  const recorder = new HistoryRecorder();
  let stored = 0;
  const ctx: CopyJobContext = {
    jobId,
    source,
    sourceStage: path.join(path.dirname(source), `.understudy-copy-${jobId}-src`),
    destinationStage: path.join(poolPath, `.understudy-copy-${jobId}-dst`),
    destination: path.join(poolPath, options.destination.name),
    poolPath,
    options,
    recorder,
    passes: [],
    started,
    throwIfCancelled() {
      if (options.signal?.aborted) throw cancelledError(ctx, options.signal.reason);
    },
    progress(event) {
      options.onProgress?.({ jobId, elapsedMs: performance.now() - started, ...event });
    },
    flushHistory() {
      if (!options.db || recorder.records.length === stored) return;
      appendCopyHistory(options.db, jobId, stored, recorder.recordsSince(stored));
      stored = recorder.records.length;
    },
  };
  if (options.db) {
    insertCopyJob(options.db, {
      id: jobId,
      ...(options.label === undefined ? {} : { label: options.label }),
      source,
      destination: ctx.destination,
      mode,
      sourceStage: ctx.sourceStage,
      destinationStage: mode === 'send-receive' ? ctx.destinationStage : null,
    });
  }
  logger.info({ jobId, source, destination: ctx.destination, mode }, 'disk copy started');
  let destinationCreated = false;
  try {
    ctx.progress({ phase: 'preparing', pass: 0, bytesDone: 0, bytesTotal: null, bytesPerSecond: 0 });
    await fs.mkdir(ctx.sourceStage);
    ctx.throwIfCancelled();
    let outcome: CutOutcome;
    if (mode === 'snapshot') {
      destinationCreated = true;
      outcome = await runSnapshotMode(ctx, policy);
    } else {
      await fs.mkdir(ctx.destinationStage);
      outcome = await runSendReceive(ctx, policy, () => {
        destinationCreated = true;
      });
    }
    ctx.flushHistory();
    let verification: CopyResult['verification'];
    if (options.verify) {
      ctx.throwIfCancelled();
      ctx.progress({
        phase: 'verifying',
        pass: ctx.passes.length,
        bytesDone: 0,
        bytesTotal: null,
        bytesPerSecond: 0,
      });
      const [expected, actual] = await Promise.all([
        hashTree(outcome.cutSnapshot),
        hashTree(ctx.destination),
      ]);
      ctx.throwIfCancelled();
      if (expected.digest !== actual.digest) {
        throw new UnderstudyError(
          'DISK_COPY_VERIFY_FAILED',
          `The copy ${ctx.destination} differs from ${source} at the cut; differing paths: ${differingPaths(expected, actual).join(', ')}`,
          {
            details: { sourceDigest: expected.digest, destinationDigest: actual.digest },
          },
        );
      }
      verification = {
        digest: actual.digest,
        entries: actual.entries,
        bytes: actual.bytes,
        durationMs: expected.durationMs > actual.durationMs ? expected.durationMs : actual.durationMs,
      };
    }
    if (!options.keepSyncBase) {
      await removeStagingDir(ctx.sourceStage);
      await removeStagingDir(ctx.destinationStage);
    }
    const summary = recorder.summary();
    const result: CopyResult = {
      jobId,
      mode,
      source,
      destination: ctx.destination,
      cutAt: outcome.cutAt,
      freezeMs: outcome.freezeMs,
      freezeAttempts: outcome.freezeAttempts,
      convergence: outcome.convergence,
      throttledMs: outcome.throttledMs,
      passes: ctx.passes,
      bytesSent: ctx.passes.reduce((sum, p) => sum + p.bytes, 0),
      durationMs: performance.now() - started,
      history: { ...summary, text: describeHistory(summary) },
      records: recorder.records,
      ...(verification ? { verification } : {}),
      ...(options.keepSyncBase
        ? { syncBase: { source: outcome.cutSnapshot, destination: outcome.receivedCut } }
        : {}),
    };
    if (options.db) finishCopyJob(options.db, jobId, result);
    ctx.progress({
      phase: 'done',
      pass: ctx.passes.length,
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
        ? cancelledError(ctx, caught)
        : caught;
    error = await explainFailure(error, ctx);
    if (!(error instanceof UnderstudyError)) {
      error = new UnderstudyError(
        'DISK_COPY_FAILED',
        `Copy of ${source} to ${ctx.destination} failed: ${String((error as Error).message ?? error)}`,
        { cause: error },
      );
    }
    logger.warn({ jobId, err: error }, 'disk copy failed; removing the partial copy');
    // Cleanup runs to the end even if one part fails; the first cleanup error is reported with the cause.
    const cleanupErrors: unknown[] = [];
    if (destinationCreated)
      await deleteSubvolume(ctx.destination).catch((e: unknown) => cleanupErrors.push(e));
    await removeStagingDir(ctx.destinationStage).catch((e: unknown) => cleanupErrors.push(e));
    await removeStagingDir(ctx.sourceStage).catch((e: unknown) => cleanupErrors.push(e));
    const failure = error as UnderstudyError;
    if (options.db) {
      ctx.flushHistory();
      failCopyJob(options.db, jobId, failure.code === 'DISK_COPY_CANCELLED' ? 'cancelled' : 'failed', {
        code: failure.code,
        message: failure.message,
      });
    }
    if (cleanupErrors.length) failure.details.cleanupErrors = cleanupErrors.map(String);
    throw failure;
  }
}
