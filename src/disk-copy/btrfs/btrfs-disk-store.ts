/**
 * The disk store on btrfs: every disk is a subvolume `<pool>/lcs/<lc>/<disk>`; its copy primitives
 * are subvolume snapshots and send/receive (btrfs-copy-session.ts), a disk set aside is the same subvolume renamed
 * `<disk>.before-<tag>`, and a sync carries what either side changed since their sync base (sync-pair.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec, isUnderstudyError, sleep, type Logger } from '../../core/index.ts';
import type { Db } from '../../store/index.ts';
import { listSyncBases } from '../sync-bases.ts';
import { diskSpecOf, type DiskRef, type DiskStore } from '../disk-store.ts';
import type { CopySession, OpenCopyOptions } from '../copy-session.ts';
import type { SyncOptions, SyncResult, TreeCheckOptions, TreeCheckResult } from '../types.ts';
import {
  adoptCopyBases,
  adoptCopyTransids,
  forgetSyncTrust,
  prepareFinal,
  recoverSyncs,
  settleSyncs,
  syncPair,
  type FinalDurable,
  type SyncSide,
} from './sync-pair.ts';
import { openBtrfsCopy, removeBtrfsCopy } from './btrfs-copy-session.ts';
import { recoverCopyJobs } from './recover.ts';
import { removeVerifyLeftovers, verifyFinal } from './verify-final.ts';

export interface BtrfsDiskStoreOptions {
  /** Where the sync bases of disk pairs are recorded; without it every sync is whole. */
  db?: Db;
  /** Mount point of a storage pool (a btrfs filesystem). */
  poolPath(pool: string): string;
  /** The block device a pool is mounted from. */
  poolDevice(pool: string): string;
  /**
   * How a final sync on transid bases makes its writes durable on the target inside the hold:
   * `fsync` (the default) fsyncs each written path and starts no commit (the base names the writes
   * with a mark per file: TransidBase.wrote); `commit` commits the pool, as every other sync does.
   * Both are crash-safe; they differ in what the hold pays (bench/final-sync.ts --durable both
   * measures the two side by side).
   */
  finalDurable?: FinalDurable;
}

/** The path an LC's disk has in its pool (the namespace driver mounts it from there). */
export function btrfsDiskPath(poolPath: string, lc: string, disk: string): string {
  return path.join(poolPath, 'lcs', lc, disk);
}

const asidePath = (diskPath: string, tag: string): string => `${diskPath}.before-${tag}`;

async function deleteSubvolume(target: string): Promise<void> {
  // After a crash of the manager its `btrfs send` may still be ending (the kernel refuses to delete a
  // snapshot while a send reads it, with EPERM): retry for a while.
  for (let attempt = 0; fs.existsSync(target); attempt++) {
    try {
      await exec(['btrfs', 'subvolume', 'delete', target]);
    } catch (error) {
      if (
        attempt >= 50 ||
        !isUnderstudyError(error) ||
        !/Operation not permitted|send may be in progress/.test(error.message)
      )
        throw error;
      await sleep(200);
    }
  }
}

export class BtrfsDiskStore implements DiskStore {
  readonly name = 'btrfs';
  constructor(private readonly options: BtrfsDiskStoreOptions) {}

  private location(ref: DiskRef): string {
    const spec = diskSpecOf(ref);
    return btrfsDiskPath(this.options.poolPath(spec.pool), ref.lc.name, spec.name);
  }

  mountpoint(ref: DiskRef): string {
    return this.location(ref);
  }

  device(ref: DiskRef): string {
    return this.options.poolDevice(diskSpecOf(ref).pool);
  }

  async openCopy(o: OpenCopyOptions<DiskRef>): Promise<CopySession> {
    const target = this.location(o.to);
    forgetSyncTrust(target);
    const db = this.options.db;
    return openBtrfsCopy({
      source: this.location(o.from),
      destination: { poolPath: path.dirname(target), name: path.basename(target) },
      jobId: o.jobId,
      ...(o.mode ? { mode: o.mode } : {}),
      ...(o.ownTree ? { ownTree: true } : {}),
      // The copy's last snapshots (or, for a tree of its own, the two disks' transactions at the cut)
      // become the bases of the incremental syncs between the two disks.
      ...(db
        ? {
            keepSyncBase: true,
            adopt: (base) => adoptCopyBases(db, { from: this.side(o.from), to: this.side(o.to), ...base }),
            adoptTransids: (bases) =>
              adoptCopyTransids(db, { from: this.side(o.from), to: this.side(o.to), ...bases }),
          }
        : {}),
    });
  }

  removeCopy = removeBtrfsCopy;

  async setAside(ref: DiskRef, tag: string): Promise<void> {
    const disk = this.location(ref);
    forgetSyncTrust(disk);
    const aside = asidePath(disk, tag);
    if (fs.existsSync(aside)) {
      // Already set aside by an earlier attempt: what is in the disk's place now is a partial copy.
      await deleteSubvolume(disk);
      return;
    }
    if (fs.existsSync(disk)) fs.renameSync(disk, aside);
  }

  async restoreAside(ref: DiskRef, tag: string): Promise<void> {
    const disk = this.location(ref);
    forgetSyncTrust(disk);
    const aside = asidePath(disk, tag);
    if (!fs.existsSync(aside)) return;
    await deleteSubvolume(disk);
    fs.renameSync(aside, disk);
  }

  async dropAside(ref: DiskRef, tag: string): Promise<void> {
    await deleteSubvolume(asidePath(this.location(ref), tag));
  }

  async removeCopyLeftovers(o: { from: DiskRef; to: DiskRef; jobId: string }): Promise<void> {
    const dirs = [path.dirname(this.location(o.from)), path.dirname(this.location(o.to))];
    for (const dir of dirs) {
      for (const stage of [`.understudy-copy-${o.jobId}-src`, `.understudy-copy-${o.jobId}-dst`]) {
        const stageDir = path.join(dir, stage);
        if (!fs.existsSync(stageDir)) continue;
        for (const entry of fs.readdirSync(stageDir)) await deleteSubvolume(path.join(stageDir, entry));
        fs.rmSync(stageDir, { recursive: true, force: true });
      }
    }
  }

  private side(ref: DiskRef): SyncSide {
    const pool = diskSpecOf(ref).pool;
    return {
      key: `${ref.lc.name}/${ref.disk}`,
      path: this.location(ref),
      pool: { name: pool, path: this.options.poolPath(pool) },
    };
  }

  async sync(from: DiskRef, to: DiskRef, options: SyncOptions = {}): Promise<SyncResult> {
    return syncPair({
      ...(this.options.db ? { db: this.options.db } : {}),
      from: this.side(from),
      to: this.side(to),
      rule: options.rule ?? 'sender-wins',
      ...(options.final ? { final: true } : {}),
      ...(options.deferDurability ? { deferDurability: true } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(this.options.finalDurable ? { finalDurable: this.options.finalDurable } : {}),
    });
  }

  async prepareFinalSync(from: DiskRef, to: DiskRef, options: SyncOptions = {}): Promise<void> {
    await prepareFinal({
      ...(this.options.db ? { db: this.options.db } : {}),
      from: this.side(from),
      to: this.side(to),
      rule: options.rule ?? 'sender-wins',
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }

  async verifyFinalSync(
    from: DiskRef,
    to: DiskRef,
    options: TreeCheckOptions = {},
  ): Promise<TreeCheckResult> {
    const db = this.options.db;
    if (!db)
      return {
        from: `${from.lc.name}/${from.disk}`,
        to: `${to.lc.name}/${to.disk}`,
        result: 'skipped',
        reason: 'no store of sync bases',
        paths: [],
        entries: 0,
        excluded: 0,
        bytes: 0,
        durationMs: 0,
      };
    return verifyFinal({ db, from: this.side(from), to: this.side(to), options });
  }

  async flush(ref: DiskRef): Promise<void> {
    await exec(['btrfs', 'filesystem', 'sync', this.location(ref)], { timeoutMs: 120_000 });
  }

  settled(): Promise<void> {
    return settleSyncs();
  }

  async recoverCopies(db: Db, options: { logger?: Logger } = {}): Promise<string[]> {
    const recovered = [...(await recoverCopyJobs(db, options)), ...(await recoverSyncs(db, options))];
    // The snapshots of whole-tree checks whose process died, next to the disks of the sync pairs.
    // A base is <directory of the disk>/.understudy-sync/<holder>/snap.
    const bases = listSyncBases(db).flatMap((b) => [b.baseA, b.baseB]);
    await removeVerifyLeftovers(
      bases.filter(Boolean).map((b) => path.dirname(path.dirname(path.dirname(b)))),
    );
    return recovered;
  }
}
