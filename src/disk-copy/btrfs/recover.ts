/** The recovery of interrupted copy jobs (recover-copies.ts) over btrfs subvolumes named by host path. */
import type { Logger } from '../../core/index.ts';
import type { Db } from '../../store/index.ts';
import { recoverInterruptedCopies } from '../recover-copies.ts';
import { removeBtrfsCopy } from './btrfs-copy-session.ts';

/** Returns the ids of the jobs cleaned up. */
export function recoverCopyJobs(db: Db, options: { logger?: Logger } = {}): Promise<string[]> {
  return recoverInterruptedCopies(db, { removeCopy: removeBtrfsCopy }, options);
}
