/**
 * The live copy of a btrfs subvolume named by host path (the CLI's and the benchmarks' entry point
 * below the disk store): the copy's algorithm (live-copy.ts) over the btrfs copy primitives
 * (btrfs-copy-session.ts).
 */
import { randomBytes } from 'node:crypto';
import { runLiveCopy } from '../live-copy.ts';
import type { CopyDiskOptions, CopyResult } from '../types.ts';
import { openBtrfsCopy } from './btrfs-copy-session.ts';

/**
 * Copies a live disk; see live-copy.ts for the contract. Throws DISK_COPY_SOURCE_INVALID,
 * DISK_COPY_DESTINATION_INVALID, POOL_FULL, DISK_COPY_CANCELLED, DISK_COPY_NOT_CONVERGED,
 * DISK_COPY_FREEZE_FAILED, DISK_COPY_VERIFY_FAILED or DISK_COPY_FAILED.
 */
export function copyDisk(options: CopyDiskOptions): Promise<CopyResult> {
  const { source, destination, mode, keepSyncBase, ownTree, ...job } = options;
  const jobId = options.jobId ?? randomBytes(4).toString('hex');
  return runLiveCopy({
    ...job,
    jobId,
    open: () =>
      openBtrfsCopy({
        source,
        destination,
        jobId,
        ...(mode ? { mode } : {}),
        ...(keepSyncBase ? { keepSyncBase } : {}),
        ...(ownTree ? { ownTree } : {}),
      }),
  });
}
