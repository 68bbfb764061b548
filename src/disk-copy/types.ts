/** The public types of the disk copy (seed steps 703/704). */
import type { Db } from '../store/index.ts';
import type { Logger } from '../core/index.ts';
import type { HistoryRecord, HistorySummary } from './history.ts';

/** Stops and resumes every writer of the source (the driver's freeze/thaw bound to one LC). */
export interface Freezer {
  /** Resolves once every process is frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
}

/** Limits the writers' write bandwidth on the source's device (the driver's setWriteLimit bound to one LC). */
export interface Throttle {
  limit(bytesPerSecond: number): Promise<void>;
  lift(): Promise<void>;
}

/**
 * How the copy is made:
 * - `send-receive`: snapshot, full `btrfs send | receive`, incremental catch-up passes, cut, final pass
 *   (the destination pool is another filesystem, e.g. other media);
 * - `snapshot`: a copy-on-write snapshot at the cut (source and destination on one filesystem; the
 *   seed's mirror split).
 * `auto` picks `snapshot` when both are on the same btrfs filesystem, `send-receive` otherwise.
 */
export type CopyMode = 'send-receive' | 'snapshot';

/**
 * What to do when the writer outpaces the copy for `maxPasses` catch-up passes:
 * - `throttle`: limit the writers' bandwidth (needs a Throttle) and keep catching up for up to
 *   `maxPasses` more passes; if even that does not converge, cut with a long freeze;
 * - `long-freeze`: cut now and keep the writers frozen until the final pass has been received;
 * - `fail`: give up with DISK_COPY_NOT_CONVERGED (source untouched, destination removed).
 */
export type NoConvergenceAction = 'throttle' | 'long-freeze' | 'fail';

export interface CopyPolicy {
  /** Catch-up passes before the convergence action (default 5). */
  maxPasses?: number;
  /** Cut as soon as a catch-up pass carried at most this many stream bytes (default 32 MiB). */
  cutBelowBytes?: number;
  /** Default: `throttle` when a throttle is given, `long-freeze` otherwise. */
  onNoConvergence?: NoConvergenceAction;
  /** Write limit while throttled (default: a quarter of the measured copy rate, at least 1 MiB/s). */
  throttleBytesPerSecond?: number;
  /** How long one freeze attempt at the cut may take before it is undone and retried (default 5 s, 5 attempts). */
  freezeTimeoutMs?: number;
}

export type ResolvedCopyPolicy = Required<Omit<CopyPolicy, 'throttleBytesPerSecond' | 'freezeTimeoutMs'>> & {
  throttleBytesPerSecond?: number;
  freezeTimeoutMs?: number;
};

export interface CopyDiskOptions {
  /** Host path of the source disk's btrfs subvolume. Never modified. */
  source: string;
  /** The copy appears as the writable subvolume `poolPath/name`, which must not exist yet. */
  destination: { poolPath: string; name: string };
  freezer: Freezer;
  throttle?: Throttle;
  /** Default `auto`. */
  mode?: 'auto' | CopyMode;
  policy?: CopyPolicy;
  /**
   * Check the copy against the source at the cut and fail (removing the copy) unless they are equal:
   * both trees hashed, or in snapshot mode the kernel's comparison of the clone with the cut.
   */
  verify?: boolean;
  signal?: AbortSignal;
  onProgress?: (event: CopyProgress) => void;
  /** When given, the job, its summary and its history records are stored (module 'disk-copy'). */
  db?: Db;
  /**
   * Default: 8 random hex digits. Names the job's snapshots, so it must be unique among running copies.
   * Reusing the id of an earlier job (a re-run step) replaces that job's stored record and history.
   */
  jobId?: string;
  /** Free text kept with the job, e.g. "lc1/system → lc2/system". */
  label?: string;
  logger?: Logger;
  /**
   * Keep the read-only snapshots the copy ends with (the source at the cut, and the one the
   * destination was cloned from) as the bases of later incremental syncs: they stay in the staging
   * directories, named in the result's `syncBase`, and the caller owns them.
   */
  keepSyncBase?: boolean;
  /**
   * The destination a tree of its own (see OpenCopyOptions.ownTree; send-receive mode only). Its
   * sync bases are transactions, which only a disk store keeps: no `syncBase` is returned.
   */
  ownTree?: boolean;
}

/**
 * Phases, in order:
 * - `preparing`: checks, first snapshot, space check;
 * - `full`: the full send of pass 0;
 * - `catch-up`: incremental passes of what was written meanwhile (pass 1, 2, …);
 * - `cut`: writers frozen, final snapshot taken, writers thawed;
 * - `final`: the last incremental pass, from the cut snapshot;
 * - `verifying`: hashing both trees;
 * - `done`: the destination is in place.
 */
export type CopyPhase = 'preparing' | 'full' | 'catch-up' | 'cut' | 'final' | 'verifying' | 'done';

export interface CopyProgress {
  jobId: string;
  phase: CopyPhase;
  /** 0 for the full copy, then 1, 2, … */
  pass: number;
  bytesDone: number;
  /** Known for the full pass (allocated bytes of the source); null for incremental passes. */
  bytesTotal: number | null;
  bytesPerSecond: number;
  elapsedMs: number;
}

/**
 * How the copy reached the cut:
 * - `converged`: a catch-up pass became small enough;
 * - `throttled`: it became small enough once the writers were throttled;
 * - `long-freeze`: it did not; the writers stayed frozen through the final pass;
 * - `instant`: snapshot mode, nothing to converge.
 */
export type Convergence = 'converged' | 'throttled' | 'long-freeze' | 'instant';

export interface PassReport {
  pass: number;
  kind: 'full' | 'catch-up' | 'final';
  /**
   * Stream bytes carried. Exact for catch-up and final passes (they pass through the history parser);
   * for the full pass, which goes straight from send to receive, sampled from send's I/O counter every
   * 200 ms (the last sample before it ended).
   */
  bytes: number;
  /** Taking the pass's read-only snapshot (for the final pass: the cut snapshot, inside the freeze). */
  snapshotMs: number;
  /** The transfer (send → receive) and flushing the received data to disk. */
  durationMs: number;
  /** History records this pass added. */
  records: number;
}

export interface CopyResult {
  jobId: string;
  mode: CopyMode;
  source: string;
  /** Path of the new writable subvolume. */
  destination: string;
  /** When the cut snapshot was taken (ISO). */
  cutAt: string;
  /** How long the writers were frozen (freeze call to thaw return, summed over attempts), in ms. */
  freezeMs: number;
  /** Freeze attempts at the cut (more than 1 when a freeze did not complete in time and was retried). */
  freezeAttempts: number;
  convergence: Convergence;
  /** How long the writers were throttled, in ms (0 when never). */
  throttledMs: number;
  passes: PassReport[];
  bytesSent: number;
  durationMs: number;
  history: HistorySummary & { text: string };
  /** The history records (also stored when a db was given). */
  records: HistoryRecord[];
  /**
   * The check that the copy equals the source at the cut. `tree-hash`: both trees hashed
   * (tree-hash.ts), `digest` their common hash, `bytes` the file content read on each side;
   * `clone-diff` (snapshot mode, on a store that can): the store compared the destination with the
   * cut it is a clone of without reading file data (`digest` and `entries` null, `bytes` 0).
   */
  verification?: {
    method: 'tree-hash' | 'clone-diff';
    digest: string | null;
    entries: number | null;
    bytes: number;
    durationMs: number;
  };
  /** With keepSyncBase: the source at the cut, and the snapshot the destination is a clone of (equal in snapshot mode). */
  syncBase?: { source: string; destination: string };
}

/**
 * Whose change wins when both disks of a sync changed since they were last made equal:
 * - `sender-wins` (data disks): the target ends equal to the source;
 * - `receiver-wins` (system disks: the target was patched): the source's changes are carried except
 *   the paths the target changed too, which keep the target's version and are reported as conflicts.
 */
export type SyncConflictRule = 'sender-wins' | 'receiver-wins';

/** Where the time of a sync went (ms), and what it carried. */
export interface SyncPhases {
  /** Read-only snapshots of both disks (before and after the copy). */
  snapshotMs: number;
  /** Finding the paths each side changed since the sync base. */
  diffMs: number;
  /** Writing those paths onto the target. */
  copyMs: number;
  /** Comparing the synced paths on both sides. */
  verifyMs: number;
  /** File bytes written. */
  bytes: number;
  /** Paths synced. */
  files: number;
}

/**
 * - `incremental`: only what changed since the sync base was looked at;
 * - `whole`: no sync base (the disks were never copied, or their bases are gone): both trees were
 *   walked, and bases were taken for the next sync;
 * - `skipped`: a system disk without a sync base is not synced (a whole sync would undo its patches).
 */
export type SyncMethod = 'incremental' | 'whole' | 'skipped';

export interface SyncResult extends SyncPhases {
  /** `lc/disk` of each side. */
  from: string;
  to: string;
  method: SyncMethod;
  /** Why the sync was not incremental. */
  reason?: string;
  rule: SyncConflictRule;
  /** Paths both sides changed that kept the target's version (`receiver-wins`), up to a bound. */
  conflicts: { count: number; paths: string[] };
  /** How many syncs the pair has had since its copy (0 = the copy). */
  generation: number;
  durationMs: number;
  /**
   * What copied the paths: this process (files, directories, links), or rsync (a whole sync, or a path
   * with extended attributes, ACLs or a special file). Absent when nothing was copied.
   */
  copier?: 'in-process' | 'rsync';
  /**
   * Files patched in place: only the byte ranges the source changed since the base were written (a
   * log that grew costs what it grew by, not its size).
   */
  patched?: number;
  /**
   * The write of the pair's new bases to the store (with the lease given back), when the sync keeps
   * bases: inside a switch's hold it is part of the pause.
   */
  storeMs?: number;
}

export interface SyncOptions {
  /** Default `sender-wins`. */
  rule?: SyncConflictRule;
  /**
   * The final sync of a switch: nobody writes the target until the caller lets it go (the hold), so
   * the sync takes no snapshot of the target after the copy (a transaction commit) and verifies the
   * copied paths on the live target. Applies to `sender-wins` only.
   */
  final?: boolean;
  /**
   * The store's record of the new bases does not wait for the disk: it survives the death of the
   * process, not a crash of the host, until the caller's next write to the same store that waits for
   * the disk, which carries it there (the store's log is written in order). For a caller that makes
   * such a write before anything relies on the sync (the switch journals its final sync done before
   * the target serves), so that the two cost one wait. A host crash before that write leaves the
   * pair on its previous bases (still valid) with this sync's snapshots named for removal, or on the
   * new ones.
   */
  deferDurability?: boolean;
  logger?: Logger;
}

export interface CatchUpOptions extends SyncOptions {
  /** At most this many passes (default 5). */
  maxPasses?: number;
  /** Stop once a pass synced at most this many paths (default 100) … */
  smallEnoughFiles?: number;
  /** … and at most this many file bytes (default 8 MiB: a log growing fast outpaces too). */
  smallEnoughBytes?: number;
}

export interface CatchUpResult {
  passes: SyncResult[];
  /** The writer kept changing more than `smallEnoughFiles` paths or `smallEnoughBytes` per pass through every pass. */
  outpaced: boolean;
}

/** Options of the whole-tree check after a final sync (DiskStore.verifyFinalSync). */
export interface TreeCheckOptions {
  /** The most file bytes read per second over both trees (default 32 MiB/s): the check is off the hot path. */
  bytesPerSecond?: number;
  /** How many differing paths to name (default 10). */
  limit?: number;
  logger?: Logger;
}

/**
 * The whole-tree check after a final sync:
 * - `ok`: every path of the target that it has not changed since the cut equals the source's at the cut;
 * - `mismatch`: `paths` name the first that differ (present on one side only, or different);
 * - `skipped`: nothing to compare (`reason`: no sync base, a sync of the pair in progress).
 */
export interface TreeCheckResult {
  /** `lc/disk` of each side. */
  from: string;
  to: string;
  result: 'ok' | 'mismatch' | 'skipped';
  reason?: string;
  paths: string[];
  /** Entries compared. */
  entries: number;
  /** Entries left out: the target changed them since the cut (the final sync's paths, checked inside the hold, and what it wrote since it serves). */
  excluded: number;
  /** File bytes read (both trees). */
  bytes: number;
  durationMs: number;
}
