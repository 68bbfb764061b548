/**
 * The disk store port: where an LC's disks live and the operations the patch run, the switch and the
 * CLI do on them, named by LC and disk, never by host path or storage technology. For the live copy
 * it supplies primitives only — snapshots, incremental send/receive, deletion, the flush before the
 * freeze point, a writable clone (copy-session.ts) — and the copy's algorithm runs above them
 * (live-copy.ts). The btrfs store (`./btrfs/`) implements it with subvolumes; a test implements it in
 * memory.
 */
import { UnderstudyError, type Logger } from '../core/index.ts';
import type { LcSpec } from '../drivers/index.ts';
import type { Db } from '../store/index.ts';
import type { CopyPrimitives } from './copy-session.ts';
import type {
  CatchUpOptions,
  CatchUpResult,
  SyncOptions,
  SyncResult,
  TreeCheckOptions,
  TreeCheckResult,
} from './types.ts';

/** One disk of one LC: `disk` is the name of a disk in `lc.disks`. */
export interface DiskRef {
  lc: LcSpec;
  disk: string;
}

/**
 * A disk store supplies the live copy's primitives (`openCopy`, see copy-session.ts); the copy itself
 * is `copyLive(store, options)` (live-copy.ts), the same for every store.
 */
export interface DiskStore extends CopyPrimitives<DiskRef> {
  readonly name: string;
  /** Host directory where the disk's tree can be read while its LC runs (the scan reads it there). */
  mountpoint(disk: DiskRef): string;
  /** The block device holding the disk (what a write limit applies to). */
  device(disk: DiskRef): string;
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
   * prepared (no base, `receiver-wins`). On btrfs it first waits (bounded) until the background work
   * of deleted snapshots in both pools is done, so that the cut's snapshot does not wait for it.
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

/**
 * Syncs repeatedly while `from` keeps running, until a pass carries few paths (so that the final
 * sync, after `from`'s last write, is small) or the passes run out (`outpaced`): passes of the
 * store's `sync`, the same for every store.
 */
export async function catchUp(
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
