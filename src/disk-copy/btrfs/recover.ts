/**
 * After a crash of the manager: copy jobs still marked `running` in the store belong to no process any
 * more. Their snapshots and partial destination are removed and the jobs marked failed, so that the
 * patch run can start the copy again from a clean state. Call it at start-up, before any new copy.
 */
import { silentLogger, type Logger } from '../../core/index.ts';
import type { Db } from '../../store/index.ts';
import { deleteSubvolume, removeStagingDir } from './btrfs.ts';
import { failCopyJob, listCopyJobs } from '../store.ts';

/** Returns the ids of the jobs cleaned up. */
export async function recoverCopyJobs(db: Db, options: { logger?: Logger } = {}): Promise<string[]> {
  const logger = options.logger ?? silentLogger;
  const recovered: string[] = [];
  for (const job of listCopyJobs(db, { limit: 1_000_000 }).filter((j) => j.state === 'running')) {
    if (job.destinationStage) await removeStagingDir(job.destinationStage);
    if (job.sourceStage) await removeStagingDir(job.sourceStage);
    // A destination of a job that never finished is partial by definition.
    await deleteSubvolume(job.destination);
    failCopyJob(db, job.id, 'failed', {
      code: 'DISK_COPY_FAILED',
      message: 'The manager stopped during the copy; the partial copy was removed',
    });
    logger.warn({ jobId: job.id, source: job.source }, 'removed the leftovers of an interrupted disk copy');
    recovered.push(job.id);
  }
  return recovered;
}
