/**
 * One sync of a disk pair on transid bases (SyncBase.transids): each side's changes after its own
 * transaction are found by a tree search (transid.ts), no snapshot is taken or kept, and the target
 * is made the source's over the source's changes and the target's own (the source's version wins:
 * a data disk ends equal to the sender's). The pair's bookkeeping (lease, store) is sync-pair.ts's.
 *
 * The pair's invariant: a path in which the two disks differ was changed, after its transaction, by
 * one side or both. A sync keeps it by moving each side's transaction only up to what it has carried:
 * the source's to the transaction its search committed; the target's, when nobody else writes it
 * (`targetHeld`) and the sync committed its writes, past them, else to the one committed before the
 * sync wrote it. Then the target's changes found by the next sync include this one's writes: the base
 * names them with the transaction that committed them (TransidBase.wrote), and a change of one of
 * them no later is not the target's own (a file patched by one pass is patched onward by the next).
 * A sync that fsynced its writes (`fsyncTarget`) started no commit: the transaction it names may
 * hold the target's next writes too, so in that one a file counts as the sync's only while it holds
 * what its mark (taken after the fsync) says. The target's own changes are made the source's whole
 * (never patched onto) where the two sides differ.
 */
import { UnderstudyError, isUnderstudyError } from '../../core/index.ts';
import type { TransidBase } from '../sync-bases.ts';
import { differingPaths, hashPaths } from '../tree-hash.ts';
import { rsyncPaths } from './sync-disk.ts';
import {
  changesSince,
  markOf,
  syncByTransid,
  type ChangedInode,
  type TransidMark,
  type TransidSearcher,
  listedName,
  withDirectories,
} from './transid.ts';

export interface TransidPassOptions {
  source: string;
  target: string;
  base: { source: TransidBase; target: TransidBase };
  searcher: TransidSearcher;
  /** The source keeps being written (a catch-up pass): see TransidSyncOptions.live. */
  live: boolean;
  /**
   * Nobody but this sync writes the target (held for a switch): its transaction moves past the
   * sync's own writes, so that the next sync has nothing of the target's to carry.
   */
  targetHeld: boolean;
  /**
   * The target was not written since its transaction (held since a pass that moved it): its search
   * is left out, which keeps it out of a switch's hold.
   */
  targetUnchanged?: boolean;
  /**
   * The target's writes made durable by fsync of each written path, starting no commit, rather
   * than by a commit of the pool (TransidSyncOptions.durable `'files'`): inside a switch's hold,
   * where a commit's cost grows with the tree. The target's transaction then stays before the
   * sync's writes, which its base names (`wrote`) with the pool's newest transaction and each
   * file's mark.
   */
  fsyncTarget?: boolean;
}

export type TransidPassOutcome =
  | {
      fallback?: undefined;
      /** The pair's new transid bases. */
      source: TransidBase;
      target: TransidBase;
      /** Paths copied whole (with the names removed), files patched, file bytes written. */
      whole: number;
      patched: number;
      bytes: number;
      /** Of the paths copied, those the target had changed on its own (the source's version won). */
      targetChanges: number;
      /** rsync when a changed path has what only rsync copies (extended attributes, special files). */
      copier: 'in-process' | 'rsync';
      searchMs: number;
      copyMs: number;
      verifyMs: number;
    }
  /** Nothing was written: the pair must be synced whole (why). */
  | { fallback: string };

/** Attempts of a live pass whose source removed a path under it (each from the same transaction). */
const LIVE_ATTEMPTS = 3;

/**
 * What the target changed on its own, as the paths to make the source's and the directories whose
 * names to reconcile; a reason to sync whole when a directory came under a new name (its old
 * content, under that name, is not in the change).
 */
function targetChangesOf(
  inodes: readonly ChangedInode[],
): { paths: string[]; directories: string[] } | string {
  const paths: string[] = [];
  const directories: string[] = [];
  for (const inode of inodes) {
    const names = inode.paths.map(listedName);
    if (inode.kind === 'dir') {
      if (inode.newerEntry && !inode.created)
        return `the target renamed or moved the directory ${names[0] ?? '?'} on its own`;
      directories.push(...names);
    }
    paths.push(...names);
  }
  return { paths, directories };
}

/** Of the target's own changes, those in which the two sides differ now. */
async function differingOnly(
  source: string,
  target: string,
  own: { paths: string[]; directories: string[] },
): Promise<{ paths: string[]; directories: string[] }> {
  if (own.paths.length === 0) return own;
  const [a, b] = await Promise.all([hashPaths(source, own.paths), hashPaths(target, own.paths)]);
  const differing = new Set(differingPaths(a, b, Infinity));
  return {
    paths: own.paths.filter((p) => differing.has(p)),
    directories: own.directories.filter((p) => differing.has(p)),
  };
}

/** Throws DISK_SYNC_VERIFY_FAILED unless the listed paths hash the same on both sides. */
async function checkSame(source: string, target: string, paths: readonly string[]): Promise<void> {
  const [a, b] = await Promise.all([hashPaths(source, paths), hashPaths(target, paths)]);
  if (a.digest === b.digest) return;
  throw new UnderstudyError(
    'DISK_SYNC_VERIFY_FAILED',
    `After the sync of ${source} onto ${target}, these paths differ: ${differingPaths(a, b).join(', ')}`,
    { hint: 'Run the sync again; if the paths still differ, report it with these paths.' },
  );
}

/**
 * Of the target's changed inodes, those the last sync's writes do not account for (searched with
 * `markAt: wrote.through` when the base has marks, so that a file changed in that transaction
 * carries its mark).
 */
export function ownChanges(inodes: readonly ChangedInode[], wrote: TransidBase['wrote']): ChangedInode[] {
  if (!wrote) return [...inodes];
  const written = new Set(wrote.paths);
  const marks = wrote.marks;
  const unchangedSince = (i: ChangedInode): boolean =>
    marks === undefined ||
    i.transid !== wrote.through ||
    (i.mark !== undefined && i.paths.every((p) => marks[listedName(p)] === i.mark));
  return inodes.filter(
    (i) =>
      i.transid === undefined ||
      i.transid > wrote.through ||
      i.paths.length === 0 ||
      !i.paths.every((p) => written.has(listedName(p))) ||
      !unchangedSince(i),
  );
}

/** Syncs the target from the source over their transid bases; see the file comment. */
export async function passByTransid(o: TransidPassOptions): Promise<TransidPassOutcome> {
  const started = performance.now();
  let own: { paths: string[]; directories: string[] } = { paths: [], directories: [] };
  let targetMark: TransidMark = o.base.target;
  if (!o.targetUnchanged) {
    const wrote = o.base.target.wrote;
    const changes = await changesSince(o.target, o.base.target.transid, {
      searcher: o.searcher,
      ...(wrote?.marks ? { markAt: wrote.through } : {}),
    });
    if (changes.uuid !== o.base.target.uuid)
      return { fallback: `${o.target} was replaced since the last sync (another subvolume)` };
    if (changes.overflow) return { fallback: `the target changed too much on its own: ${changes.reason}` };
    const found = targetChangesOf(ownChanges(changes.inodes, o.base.target.wrote));
    if (typeof found === 'string') return { fallback: found };
    own = await differingOnly(o.source, o.target, found);
    targetMark = { transid: changes.transid, uuid: changes.uuid };
  }
  const targetSearchMs = performance.now() - started;
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await syncByTransid({
        source: o.source,
        target: o.target,
        since: o.base.source.transid,
        sourceUuid: o.base.source.uuid,
        searcher: o.searcher,
        live: o.live,
        ...(o.fsyncTarget ? { durable: 'files' as const, targetSince: targetMark.transid } : {}),
        extra: own.paths,
        extraDirectories: own.directories,
      });
      if (outcome.overflow && (outcome.paths === undefined || outcome.transid === undefined))
        return { fallback: outcome.reason };
      const target = async (): Promise<TransidBase> => {
        if (outcome.overflow) return o.targetHeld ? markOf(o.target, o.searcher) : targetMark;
        // Fsynced, the sync's writes are in a transaction that may still be running, which a later
        // write of the target's own may share: the base names them with it and each file's mark.
        if (outcome.fsynced)
          return {
            ...targetMark,
            wrote: { through: outcome.fsynced.through, paths: outcome.written, marks: outcome.fsynced.marks },
          };
        const committed = outcome.targetTransid;
        if (o.targetHeld && committed !== undefined) return { transid: committed, uuid: o.base.target.uuid };
        // The sync's writes end in the transaction that committed them.
        if (committed !== undefined)
          return { ...targetMark, wrote: { through: committed, paths: outcome.written } };
        return o.targetHeld ? markOf(o.target, o.searcher) : targetMark;
      };
      if (outcome.overflow) {
        const copyStarted = performance.now();
        const searchMs = copyStarted - started;
        const paths = withDirectories(outcome.paths!);
        const bytes = await rsyncPaths({
          source: o.source,
          target: o.target,
          paths,
          labels: { source: o.source, target: o.target },
        });
        const copyMs = performance.now() - copyStarted;
        const checkStarted = performance.now();
        // A quiesced source is checked here; a live one's later changes are the next pass's.
        if (!o.live) await checkSame(o.source, o.target, paths);
        return {
          source: { transid: outcome.transid!, uuid: o.base.source.uuid },
          target: await target(),
          whole: paths.length,
          patched: 0,
          bytes,
          targetChanges: own.paths.length,
          copier: 'rsync',
          searchMs,
          copyMs,
          verifyMs: performance.now() - checkStarted,
        };
      }
      return {
        source: { transid: outcome.transid, uuid: o.base.source.uuid },
        target: await target(),
        whole: outcome.whole,
        patched: outcome.patched,
        bytes: outcome.bytes,
        targetChanges: own.paths.length,
        copier: 'in-process',
        searchMs: outcome.searchMs + targetSearchMs,
        copyMs: outcome.copyMs,
        verifyMs: outcome.verifyMs,
      };
    } catch (error) {
      if (
        o.live &&
        attempt < LIVE_ATTEMPTS &&
        isUnderstudyError(error, 'DISK_SYNC_FAILED') &&
        error.details.vanished === true
      )
        continue;
      if (isUnderstudyError(error, 'DISK_SYNC_FAILED') && error.details.replaced === true)
        return { fallback: `${o.source} was replaced since the last sync (another subvolume)` };
      throw error;
    }
  }
}
