/**
 * The disk copy (seed steps 703/704): a live copy of a running LC's disk that ends identical to the
 * source at the cut, with the write history of the copy recorded.
 */
export { copyDisk } from './btrfs/copy-disk.ts';
export { catchUp, diskSpecOf, type DiskStore, type DiskRef } from './disk-store.ts';
export { copyLive, runLiveCopy, type LiveCopyOptions, type LiveCopyJobOptions } from './live-copy.ts';
export type {
  CopyPrimitives,
  CopySession,
  CopyNames,
  OpenCopyOptions,
  SendOptions,
  SendResult,
} from './copy-session.ts';
export { BtrfsDiskStore, btrfsDiskPath, type BtrfsDiskStoreOptions } from './btrfs/btrfs-disk-store.ts';
export type {
  CopyDiskOptions,
  CopyResult,
  CopyProgress,
  CopyPhase,
  CopyMode,
  CopyPolicy,
  Convergence,
  NoConvergenceAction,
  PassReport,
  Freezer,
  Throttle,
  SyncConflictRule,
  SyncPhases,
  SyncMethod,
  SyncResult,
  SyncOptions,
  CatchUpOptions,
  CatchUpResult,
  TreeCheckOptions,
  TreeCheckResult,
} from './types.ts';
export { getSyncBase, listSyncBases, type SyncBase } from './sync-bases.ts';
export {
  HistoryRecorder,
  describeHistory,
  type HistoryChange,
  formatBytes,
  type HistoryRecord,
  type HistoryOp,
  type HistorySummary,
} from './history.ts';
export {
  SendStreamParser,
  sendCommands,
  sendAttributes,
  type SendCommand,
  type SendCommandName,
} from './btrfs/send-stream.ts';
export { historyChangeOf, historyChangesOfInodes } from './btrfs/send-history.ts';
export { anyXattrs, hashTree, hashPaths, differingPaths, type TreeHash } from './tree-hash.ts';
export {
  createCgroup,
  existingCgroupFreezer,
  cgroupVersion,
  deviceNumber,
  type Cgroup,
  type CgroupVersion,
} from './cgroup.ts';
export { whileFrozen, type FreezeOptions, type FrozenResult } from './freeze.ts';
export { resolvePolicy, decideNextStep, type NextStep, type PassState } from './policy.ts';
export { recoverCopyJobs } from './btrfs/recover.ts';
export { removeStagingDir } from './btrfs/btrfs.ts';
export { recoverInterruptedCopies } from './recover-copies.ts';
export { differingPatches, mergeRanges, patchFiles, type FilePatch } from './btrfs/patch-files.ts';
export { ownChanges } from './btrfs/transid-pair.ts';
export {
  changesSince,
  markOf,
  planTransidSync,
  syncByTransid,
  unexplainedDifferences,
  TransidSearcher,
  type ChangedInode,
  type TransidChanges,
  type TransidMark,
  type TransidPlan,
  type TransidSyncOptions,
  type TransidSyncOutcome,
} from './btrfs/transid.ts';
export {
  diskCopySchema,
  getCopyJob,
  listCopyJobs,
  listCopyHistory,
  insertCopyJob,
  appendCopyHistory,
  finishCopyJob,
  failCopyJob,
  copyJobOwned,
  copyLease,
  type CopyJob,
  type CopyJobState,
} from './store.ts';
