/**
 * The whole-tree check after a final sync, run in the background once the target serves: the source
 * disk at the cut against the target disk at the same moment.
 *
 * After a final sync the pair's bases are the source's snapshot at the cut and a snapshot of the
 * target taken while it was held (before the copy; or, after a whole or a plain sync, after it). The
 * copy changed on the target only the paths it listed, each checked against the cut inside the hold.
 * So every path the target has not changed since its base must be equal in the two bases. The check
 * takes a snapshot of the target now, lists what the target changed since its base (the final
 * sync's paths and what it wrote since it serves: `btrfs send --no-data`), and compares the two bases'
 * tree hashes over every other path. A difference there is a path of the standby that differs from
 * the source's though neither side recorded a change — what an incremental sync cannot see. The
 * paths the final sync wrote (recorded with the bases: SyncBase.ahead) are left out too.
 *
 * On transid bases (SyncBase.transids) no base is kept: the check snapshots both disks now, hashes
 * both trees, and accepts a difference that either side's changes after its transaction explain (the
 * final sync's own paths, checked inside the hold, and what each side wrote since; see
 * unexplainedDifferences). Its snapshots are deleted at the end, before the next hold.
 *
 * The bases are pinned by snapshots of their own (a sync of the pair meanwhile may replace them); the
 * reads are paced (TreeCheckOptions.bytesPerSecond). Everything the check creates lives under
 * `.understudy-verify/<pid>-…` next to each disk and is removed at the end, or by the recovery when
 * the process died (removeVerifyLeftovers).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isErrno, isOwnerAlive, processIdentity } from '../../core/index.ts';
import type { Db } from '../../store/index.ts';
import { baseOf, getSyncBase, type SyncBase } from '../sync-bases.ts';
import { differingPaths, hashTree, readPace, type TreeHash } from '../tree-hash.ts';
import type { TreeCheckOptions, TreeCheckResult } from '../types.ts';
import { deleteSubvolume, snapshot } from './btrfs.ts';
import { changedPaths } from './change-set.ts';
import type { SyncSide } from './sync-pair.ts';
import {
  ancestorsOf,
  changesSince,
  listedName,
  unexplainedDifferences,
  type ChangedInode,
} from './transid.ts';

const verifyDirOf = (disk: string): string => path.join(path.dirname(disk), '.understudy-verify');

/** Checks `to` against `from` after their final sync; see the file comment. */
export async function verifyFinal(o: {
  db: Db;
  from: SyncSide;
  to: SyncSide;
  options?: TreeCheckOptions;
}): Promise<TreeCheckResult> {
  const started = performance.now();
  const empty = { from: o.from.key, to: o.to.key, paths: [], entries: 0, excluded: 0, bytes: 0 };
  const skipped = (reason: string): TreeCheckResult => ({
    ...empty,
    result: 'skipped',
    reason,
    durationMs: performance.now() - started,
  });
  const base = getSyncBase(o.db, o.from.key, o.to.key);
  if (base?.transids && base.state === 'ready') return verifyByTransids(o, base, started, skipped);
  if (!base || !base.baseA || !base.baseB) return skipped(`no sync base for ${o.from.key} and ${o.to.key}`);
  if (base.state !== 'ready') return skipped(`a sync of ${o.from.key} and ${o.to.key} is in progress`);
  const id = checkId(base);
  const holders = {
    cut: path.join(verifyDirOf(o.from.path), `${id}-cut`),
    before: path.join(verifyDirOf(o.to.path), `${id}-base`),
    now: path.join(verifyDirOf(o.to.path), `${id}-now`),
  };
  try {
    for (const holder of Object.values(holders)) await fs.mkdir(path.dirname(holder), { recursive: true });
    try {
      await snapshot({ source: baseOf(base, o.from.key), target: holders.cut, readOnly: true });
      await snapshot({ source: baseOf(base, o.to.key), target: holders.before, readOnly: true });
    } catch (error) {
      // A sync of the pair replaced (and removed) the bases between the read and the snapshot.
      if (getSyncBase(o.db, o.from.key, o.to.key)?.generation !== base.generation)
        return skipped(`${o.from.key} and ${o.to.key} were synced again meanwhile`);
      throw error;
    }
    await snapshot({ source: o.to.path, target: holders.now, readOnly: true });
    const changed = await changedPaths(holders.before, holders.now);
    // The paths the final sync wrote after the target's base (SyncBase.ahead): the target's changes
    // name them too, except one the sync created and the target removed since it serves.
    const ahead = new Set(base.ahead?.paths ?? []);
    const moved = [...changed.moved].map((p) => `${p}/`);
    const excluded = (p: string): boolean =>
      changed.paths.has(p) || ahead.has(p) || moved.some((m) => p.startsWith(m));
    const pace = readPace(o.options?.bytesPerSecond ?? 32 * 1024 * 1024);
    // A hard-link group with members on both sides of `excluded` is compared by its members outside.
    const linksAmong = (p: string): boolean => !excluded(p);
    const source = await hashTree(holders.cut, { pace, linksAmong });
    const target = await hashTree(holders.before, { pace, linksAmong });
    const compared = comparePaths(source, target, excluded, o.options?.limit ?? 10);
    return {
      ...empty,
      result: compared.differing.length > 0 ? 'mismatch' : 'ok',
      paths: compared.differing,
      entries: compared.entries,
      excluded: compared.excluded,
      bytes: source.bytes + target.bytes,
      durationMs: performance.now() - started,
    };
  } finally {
    for (const holder of Object.values(holders)) await deleteSubvolume(holder);
  }
}

/**
 * Named after this process's identity (pid and start time), so that the leftovers of a process that
 * is gone are told apart from a live one's even when its pid is reused.
 */
function checkId(base: SyncBase): string {
  const owner = (processIdentity(process.pid) ?? `${process.pid}:0:*`).split(':');
  return `${owner[0]}-${owner[1]}-g${base.generation}-${randomBytes(3).toString('hex')}`;
}

/** The whole-tree check of a pair on transid bases; see the file comment. */
async function verifyByTransids(
  o: { db: Db; from: SyncSide; to: SyncSide; options?: TreeCheckOptions },
  base: SyncBase,
  started: number,
  skipped: (reason: string) => TreeCheckResult,
): Promise<TreeCheckResult> {
  const marks = { from: base.transids?.[o.from.key], to: base.transids?.[o.to.key] };
  if (!marks.from || !marks.to) return skipped(`no sync base for ${o.from.key} and ${o.to.key}`);
  const id = checkId(base);
  const holders = {
    cut: path.join(verifyDirOf(o.from.path), `${id}-cut`),
    now: path.join(verifyDirOf(o.to.path), `${id}-now`),
  };
  try {
    for (const holder of Object.values(holders)) await fs.mkdir(path.dirname(holder), { recursive: true });
    await snapshot({ source: o.from.path, target: holders.cut, readOnly: true });
    await snapshot({ source: o.to.path, target: holders.now, readOnly: true });
    if (getSyncBase(o.db, o.from.key, o.to.key)?.generation !== base.generation)
      return skipped(`${o.from.key} and ${o.to.key} were synced again meanwhile`);
    // A snapshot's items keep the transids of the disk's: each side's changes after its transaction.
    const sides = [
      await changesSince(holders.cut, marks.from.transid),
      await changesSince(holders.now, marks.to.transid),
    ] as const;
    for (const changes of sides)
      if (changes.overflow)
        return skipped(`too much changed since the final sync to check (${changes.reason})`);
    const [fromLater, toLater] = sides.map((c) => (c.overflow ? [] : c.inodes)) as [
      ChangedInode[],
      ChangedInode[],
    ];
    const later = [...fromLater, ...toLater];
    const changed = new Set(later.flatMap((i) => i.paths.map(listedName)));
    const wholeDirs = new Set(
      later
        .filter((i) => i.kind === 'dir' && (i.created || i.newerEntry))
        .flatMap((i) => i.paths.map(listedName)),
    );
    const excluded = (p: string): boolean =>
      changed.has(p) || (p !== '.' && ancestorsOf(p).some((a) => wholeDirs.has(a)));
    const pace = readPace(o.options?.bytesPerSecond ?? 32 * 1024 * 1024);
    const linksAmong = (p: string): boolean => !excluded(p);
    const source = await hashTree(holders.cut, { pace, linksAmong });
    const target = await hashTree(holders.now, { pace, linksAmong });
    const absentIn = (hash: TreeHash, paths: readonly string[]): Set<string> => {
      const absent = new Set<string>();
      for (const p of paths)
        for (const q of [p, ...(p === '.' ? [] : ancestorsOf(p))])
          if (q !== '.' && !hash.lines.has(q)) absent.add(q);
      return absent;
    };
    const differing = differingPaths(source, target, Infinity);
    const byTarget = unexplainedDifferences(differing, toLater, absentIn(target, differing));
    const unexplained = unexplainedDifferences(byTarget, fromLater, absentIn(source, byTarget));
    const all = new Set([...source.lines.keys(), ...target.lines.keys()]);
    const left = [...all].filter(excluded).length;
    return {
      from: o.from.key,
      to: o.to.key,
      result: unexplained.length > 0 ? 'mismatch' : 'ok',
      paths: unexplained.sort().slice(0, o.options?.limit ?? 10),
      entries: all.size - left,
      excluded: left,
      bytes: source.bytes + target.bytes,
      durationMs: performance.now() - started,
    };
  } finally {
    for (const holder of Object.values(holders)) await deleteSubvolume(holder);
  }
}

/** The paths (up to `limit`) whose entries differ between two tree hashes, outside `excluded`. */
function comparePaths(
  a: TreeHash,
  b: TreeHash,
  excluded: (p: string) => boolean,
  limit: number,
): { differing: string[]; entries: number; excluded: number } {
  const differing: string[] = [];
  let entries = 0;
  let left = 0;
  for (const p of new Set([...a.lines.keys(), ...b.lines.keys()])) {
    if (excluded(p)) {
      left += 1;
      continue;
    }
    entries += 1;
    if (a.lines.get(p) !== b.lines.get(p) && differing.length < limit) differing.push(p);
  }
  return { differing: differing.sort(), entries, excluded: left };
}

/** Removes the snapshots of checks whose process is gone, in the given directories of disks. */
export async function removeVerifyLeftovers(diskDirs: readonly string[]): Promise<void> {
  for (const dir of new Set(diskDirs.map((d) => path.join(d, '.understudy-verify')))) {
    let entries: string[];
    try {
      entries = await fs.readdir(dir);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue;
      throw error;
    }
    for (const entry of entries) {
      const [pid, start] = entry.split('-');
      if (Number.isInteger(Number(pid)) && Number(pid) !== process.pid && !isOwnerAlive(`${pid}:${start}:*`))
        await deleteSubvolume(path.join(dir, entry));
    }
  }
}
