/**
 * After a crash of the manager: copy jobs still marked `running` whose process is gone (their lease
 * has no live owner) are removed through the store's `removeCopy` — snapshots, staging and partial
 * destination — and marked failed, so that the patch run can start the copy again from a clean
 * state. A job another live process is still making is left alone. Called by the recovery at every
 * start (`DiskStore.recoverCopies`), the same for every store.
 */
import { silentLogger, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { CopyPrimitives } from './copy-session.ts';
import { copyJobOwned, failCopyJob, listCopyJobs } from './store.ts';

/** Returns the ids of the jobs cleaned up. */
export async function recoverInterruptedCopies(
  db: Db,
  store: Pick<CopyPrimitives<unknown>, 'removeCopy'>,
  options: { logger?: Logger } = {},
): Promise<string[]> {
  const logger = options.logger ?? silentLogger;
  const recovered: string[] = [];
  for (const job of listCopyJobs(db, { limit: 1_000_000 }).filter((j) => j.state === 'running')) {
    if (copyJobOwned(db, job.id)) continue;
    await store.removeCopy(job);
    failCopyJob(db, job.id, 'failed', {
      code: 'DISK_COPY_FAILED',
      message: 'The manager stopped during the copy; the partial copy was removed',
    });
    logger.warn({ jobId: job.id, source: job.source }, 'removed the leftovers of an interrupted disk copy');
    recovered.push(job.id);
  }
  return recovered;
}
