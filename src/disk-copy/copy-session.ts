/**
 * The primitives a disk store gives the live copy. The copy's algorithm (live-copy.ts: the full pass,
 * catch-up passes until the policy cuts, the freeze point, the final pass, verification, clean-up,
 * progress and the job's record) is written once above them; a store only supplies these operations,
 * on one copy job at a time:
 *
 * - read-only snapshots of the source, named within the job (`pass-0`, `pass-1`, …, `cut`);
 * - the send of a snapshot relative to a parent snapshot already received, received on the
 *   destination's side (a full send without a parent);
 * - deletion of a snapshot on both sides;
 * - flushing the source before a freeze point, so that a snapshot inside the freeze is quick;
 * - a writable clone of a snapshot in the destination's place;
 * - a hash of a snapshot's or the destination's tree (verification), or in snapshot mode a comparison
 *   of the destination with the snapshot it is a clone of that reads no file data;
 * - the end of the job: keeping the cut as the pair's sync base, or removing every snapshot;
 * - after a crash, removing what a job whose process died left (`removeCopy`).
 *
 * Contract of every session: the source is never written; only the job's snapshots, its staging and
 * (after `clone`) the destination are created, and `discard` removes all of them.
 */
import type { HistoryChange } from './history.ts';
import type { TreeHash } from './tree-hash.ts';
import type { CopyMode } from './types.ts';

/** What a job is called in its record, its result and its errors. */
export interface CopyNames {
  /** The source disk, as the store names it (a host path, for a store on a filesystem). */
  source: string;
  /** The destination disk, which appears at `clone`. */
  destination: string;
  /** Where the job's snapshots of the source are kept (recovery removes it after a crash). */
  sourceStage: string;
  /** Where the received snapshots are kept; null when nothing is received (snapshot mode). */
  destinationStage: string | null;
}

export interface SendOptions {
  /** The source's snapshot to send. */
  snapshot: string;
  /** A snapshot sent before (and still present on both sides): only the difference is sent. */
  parent?: string;
  signal?: AbortSignal;
  /**
   * When given, every change the send carries is handed to it (the write history); it may throw to
   * abort the send. A full pass is sent without it.
   */
  onChange?: (change: HistoryChange) => void;
  /** Bytes sent so far, reported while the send runs. */
  onBytes?: (bytes: number) => void;
}

export interface SendResult {
  /** Bytes the send carried (0 when a full send ended before it could be counted). */
  bytes: number;
  /** The transfer and making the received data durable. */
  durationMs: number;
}

/** One copy job between two disks of one store, opened by `CopyPrimitives.openCopy`. */
export interface CopySession {
  /**
   * `snapshot`: both disks share a filesystem, and the cut's snapshot is cloned in place (nothing is
   * sent); `send-receive`: snapshots are sent to the destination's side and the received cut cloned.
   */
  readonly mode: CopyMode;
  readonly names: CopyNames;
  /** Creates the job's staging (where its snapshots go) on each side that needs one. */
  prepare(): Promise<void>;
  /** A read-only snapshot of the source named `name` (unique within the job). */
  snapshot(name: string): Promise<void>;
  /** Bytes the files of snapshot `name` take (about what its full send carries). */
  size(name: string): Promise<number>;
  /** Throws POOL_FULL (naming the destination's pool and the bytes missing) unless `bytes` fit. */
  checkSpace(bytes: number): Promise<void>;
  /** Sends snapshot `snapshot` (relative to `parent`) and receives it on the destination's side. */
  send(options: SendOptions): Promise<SendResult>;
  /** Deletes snapshot `name` on both sides (a missing one is fine). */
  deleteSnapshot(name: string): Promise<void>;
  /** Writes what the source holds in memory to its device: called just before the freeze point. */
  flush(): Promise<void>;
  /**
   * Puts a writable clone of snapshot `name` in the destination's place: the received snapshot in
   * `send-receive` mode, the source's own in `snapshot` mode.
   */
  clone(name: string): Promise<void>;
  /** The tree hash of the source's snapshot `name`, or of the destination (after `clone`). */
  hash(what: { snapshot: string } | 'destination'): Promise<TreeHash>;
  /**
   * Snapshot mode only, where the store can compare a clone with the snapshot it was made from
   * without reading file data: up to `limit` paths in which the destination differs from the source's
   * snapshot `name` (none: equal in content, type, mode, owner, links and extended attributes). A
   * store without it is verified by hashing both trees.
   */
  diffClone?(name: string, limit: number): Promise<string[]>;
  /**
   * After a copy that succeeded: the snapshots of the cut `cut` either become the two disks' sync
   * base (returned) or are removed with every other snapshot of the job and the staging.
   */
  finish(cut: string): Promise<{ source: string; destination: string } | undefined>;
  /**
   * After a failure or a cancel: removes the destination (when `destinationCreated`), every snapshot
   * and the staging. Runs every part even when one fails, and returns the errors.
   */
  discard(options: { destinationCreated: boolean }): Promise<unknown[]>;
  /** The error a user can act on for a failure of this store (e.g. POOL_FULL for no space left). */
  explainFailure(error: unknown): Promise<unknown>;
}

export interface OpenCopyOptions<Disk> {
  from: Disk;
  /** Receives the copy; its current content must have been set aside (or be absent). */
  to: Disk;
  /** Names the job's snapshots; unique among running copies. */
  jobId: string;
  /** Default `auto`: the store picks. */
  mode?: 'auto' | CopyMode;
  /**
   * The destination becomes a tree of its own, never a clone of a received snapshot: received whole
   * at the full pass, then brought up to date by each later pass from the changes it finds, and the
   * two disks' sync bases are their transactions instead of snapshots. For a disk whose switch holds
   * commit it (a data disk): a tree once shared with snapshots makes every later commit slower, more
   * so the larger it is (docs/disk-copy.md). A store may ignore it (btrfs does in snapshot mode).
   */
  ownTree?: boolean;
}

/** What a disk store supplies to the live copy. */
export interface CopyPrimitives<Disk> {
  /**
   * Checks both disks (the source exists, the destination does not) and picks the mode. Throws
   * DISK_COPY_SOURCE_INVALID or DISK_COPY_DESTINATION_INVALID; creates nothing.
   */
  openCopy(options: OpenCopyOptions<Disk>): Promise<CopySession>;
  /**
   * Removes what a copy job whose process died left, by the names its record keeps: every snapshot,
   * the staging, and the destination (partial by definition). Idempotent; `sourceStage` may be null
   * in a record of an old job.
   */
  removeCopy(names: Omit<CopyNames, 'sourceStage'> & { sourceStage: string | null }): Promise<void>;
}
