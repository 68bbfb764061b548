/**
 * The disk store port: where an LC's disks live and the operations the patch run, the switch and the
 * CLI do on them, named by LC and disk, never by host path or storage technology. The btrfs store
 * (`./btrfs/`) implements it with subvolumes, read-only snapshots, incremental send/receive, a
 * snapshot taken while the writers are frozen (the freeze point of the cut) and writable clones; a
 * test implements it in memory.
 */
import { UnderstudyError, type Logger } from '../core/index.ts';
import type { LcSpec } from '../drivers/index.ts';
import type { Db } from '../store/index.ts';
import type {
  CatchUpOptions,
  CatchUpResult,
  CopyMode,
  CopyPolicy,
  CopyProgress,
  CopyResult,
  Freezer,
  SyncOptions,
  SyncResult,
  Throttle,
  TreeCheckOptions,
  TreeCheckResult,
} from './types.ts';

/** One disk of one LC: `disk` is the name of a disk in `lc.disks`. */
export interface DiskRef {
  lc: LcSpec;
  disk: string;
}

export interface LiveCopyOptions {
  from: DiskRef;
  /** Receives the copy; its current content must have been set aside (or be absent). */
  to: DiskRef;
  /** Names the job's snapshots and its record; unique among running copies. */
  jobId: string;
  label?: string;
  /** Stops `from`'s writers for the freeze point of the cut. */
  freezer: Freezer;
  /** Limits `from`'s writers when the copy does not converge. */
  throttle?: Throttle;
  /** Compare both trees at the cut and fail unless they are equal. */
  verify: boolean;
  /** When to cut and what to do when the writers outpace the copy (defaults: see CopyPolicy). */
  policy?: CopyPolicy;
  /** Default `auto`: the store picks. */
  mode?: 'auto' | CopyMode;
  /** Where the job and its write history are recorded. */
  db?: Db;
  signal?: AbortSignal;
  logger?: Logger;
  onProgress?: (event: CopyProgress) => void;
}

export interface DiskStore {
  readonly name: string;
  /** Host directory where the disk's tree can be read while its LC runs (the scan reads it there). */
  mountpoint(disk: DiskRef): string;
  /** The block device holding the disk (what a write limit applies to). */
  device(disk: DiskRef): string;
  /**
   * Live copy (seed 703/704): snapshot, full then incremental send/receive passes while `from` keeps
   * writing, the cut at a freeze point, a writable clone in `to`'s place. Leaves nothing on failure.
   */
  copyLive(options: LiveCopyOptions): Promise<CopyResult>;
  /** Keeps the disk's content aside under `tag` (once: a second call deletes what replaced it). */
  setAside(disk: DiskRef, tag: string): Promise<void>;
  /** Puts the content kept under `tag` back in the disk's place (no-op when nothing is kept). */
  restoreAside(disk: DiskRef, tag: string): Promise<void>;
  /** Deletes the content kept under `tag` (no-op when nothing is kept). */
  dropAside(disk: DiskRef, tag: string): Promise<void>;
  /** Removes the snapshots a copy job `jobId` between the two disks left when its process died. */
  removeCopyLeftovers(options: { from: DiskRef; to: DiskRef; jobId: string }): Promise<void>;
  /**
   * Carries `from`'s changes onto `to` (the final sync of a stateful switch, its catch-up passes, and
   * the switch back): deletions, links, ownership, ACLs and extended attributes follow. When the two
   * disks have a sync base (a live copy between them, or an earlier sync, in either direction), only
   * what either side changed since is looked at, and `options.rule` says whose change wins where
   * both changed; the pair is then re-based. Without a base, a data disk is synced whole and a
   * system disk (`receiver-wins`) is skipped; the result says which and why.
   * Throws POOL_FULL (naming `to`'s pool) or DISK_SYNC_FAILED; `from` is never written, and running
   * the sync again after a failure finishes it.
   */
  sync(from: DiskRef, to: DiskRef, options?: SyncOptions): Promise<SyncResult>;
  /**
   * Does ahead of a final sync (`sync(from, to, { final: true })`) what does not wait for `from`'s last
   * write, once `to` is held (nobody writes it until the final sync is done): on btrfs the pair's
   * lease, `to`'s snapshot and its changes since the base. The final sync then only snapshots and
   * diffs `from`. Any other sync of the pair drops what was prepared. A no-op where nothing can be
   * prepared (no base, `receiver-wins`).
   */
  prepareFinalSync(from: DiskRef, to: DiskRef, options?: SyncOptions): Promise<void>;
  /**
   * The whole-tree check after a final sync, once `to` serves again (in the background: the reads
   * are paced): `from`'s tree at the cut against `to`'s tree at the same moment, over every path `to`
   * has not changed since (the final sync's own paths were checked inside the hold). `mismatch` names
   * the first differing paths. Call it after the final sync and before the pair is synced again (a
   * later sync makes it `skipped`). Absent where a store cannot check (no sync bases).
   */
  verifyFinalSync?(from: DiskRef, to: DiskRef, options?: TreeCheckOptions): Promise<TreeCheckResult>;
  /**
   * Syncs repeatedly while `from` keeps running, until a pass carries few paths (so that the final
   * sync, after `from`'s last write, is small) or the passes run out (`outpaced`).
   */
  catchUp(from: DiskRef, to: DiskRef, options?: CatchUpOptions): Promise<CatchUpResult>;
  /**
   * Writes what the disk's filesystem holds in memory to its device (on btrfs, a transaction commit),
   * so that a snapshot taken soon after has little to write: the switch calls it just before its hold.
   */
  flush(disk: DiskRef): Promise<void>;
  /** Resolves once the background work of earlier syncs (removing the bases they replaced) is done. */
  settled(): Promise<void>;
  /**
   * After a crash: removes the leftovers of copy jobs and syncs whose process is gone (a job whose
   * lease is held by a live process is left alone) and marks the copy jobs failed. Resolves with the
   * copy job ids and sync pairs cleaned up.
   */
  recoverCopies(db: Db, options?: { logger?: Logger }): Promise<string[]>;
}

/** Passes of `sync` until one is small enough (the catch-up of DiskStore, for any store). */
export async function catchUpBySync(
  store: Pick<DiskStore, 'sync'>,
  o: { from: DiskRef; to: DiskRef; options?: CatchUpOptions },
): Promise<CatchUpResult> {
  const maxPasses = o.options?.maxPasses ?? 5;
  const smallEnough = o.options?.smallEnoughFiles ?? 100;
  const smallEnoughBytes = o.options?.smallEnoughBytes ?? 8 * 1024 * 1024;
  const passes: SyncResult[] = [];
  for (let pass = 0; pass < maxPasses; pass++) {
    const result = await store.sync(o.from, o.to, o.options);
    passes.push(result);
    if ((result.files <= smallEnough && result.bytes <= smallEnoughBytes) || result.method === 'skipped')
      return { passes, outpaced: false };
  }
  o.options?.logger?.warn(
    { from: o.from.lc.name, disk: o.from.disk, passes: passes.length },
    'the writer outpaces the catch-up sync',
  );
  return { passes, outpaced: true };
}

/** The DiskSpec of `ref`; throws DISK_NOT_FOUND naming the LC and the disk. */
export function diskSpecOf(ref: DiskRef): LcSpec['disks'][number] {
  const spec = ref.lc.disks.find((d) => d.name === ref.disk);
  if (!spec) throw diskNotFound(ref);
  return spec;
}

function diskNotFound(ref: DiskRef): UnderstudyError {
  return new UnderstudyError(
    'DISK_NOT_FOUND',
    `The logical computer "${ref.lc.name}" has no disk named "${ref.disk}"`,
    { hint: `Its disks: ${ref.lc.disks.map((d) => d.name).join(', ') || '(none)'}` },
  );
}
