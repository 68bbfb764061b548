/**
 * The sync of one disk onto its copy (the final sync of a stateful switch, its catch-up passes, and
 * the switch back): the copy's disk is made to hold what the source's disk holds now, at a cost that
 * follows what changed since the two were last equal, not the size of either.
 *
 * Incremental (both sides have a sync base, the snapshots taken when they were last made equal):
 *   1. snapshot: a read-only snapshot of the source now (`cut`) and of the target now (`now`);
 *   2. diff: the paths each side changed since its base (metadata-only `btrfs send -p`, see
 *      change-set.ts), the directories renamed on either side taken whole, every other name of a
 *      hard-linked file added;
 *   3. copy: exactly those paths from `cut` onto the target's live tree (rsync `--files-from`, a path
 *      absent from `cut` is deleted), with the attributes, links, ACLs, xattrs and owners;
 *   4. verify: a read-only snapshot of the target after the copy (`after`, the target's next base) and
 *      the hash of the synced paths in `cut` and in `after` must be equal.
 * Which paths are synced depends on the rule:
 *   - `sender-wins` (data disks): both sides' changes; the target ends equal to `cut`;
 *   - `receiver-wins` (system disks, where the target was patched): the source's changes except the
 *     paths the target changed too (or that lie in a directory the target removed or moved), which
 *     are reported as conflicts and keep the target's version.
 * Whole (no base): `cut` is rsynced onto the target with deletions (a walk of both trees), then
 * `after` is taken so that the next sync can be incremental.
 *
 * The source is never written. A failure leaves the target's live tree partly synced (every file
 * rsync finished is whole); the bases stay valid, so running the sync again finishes it.
 */
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UnderstudyError, exec, isErrno, isUnderstudyError } from '../../core/index.ts';
import { anyXattrs, differingPaths, hashPaths } from '../tree-hash.ts';
import { applyPlan, planApply, planPaths, type ApplyPlan } from './apply-paths.ts';
import type { SyncConflictRule } from '../types.ts';
import { snapshot } from './btrfs.ts';
import { changedPaths, withoutTransient, type ChangeSet } from './change-set.ts';
import { differingPatches, patchFiles, sameInEdit, type FilePatch } from './patch-files.ts';
import { addSubtree, join } from './tree-paths.ts';

export interface SyncDiskOptions {
  /** Live subvolume of the source disk (read only through snapshots). */
  source: string;
  /** Live subvolume of the target disk (written in place). */
  target: string;
  /** The sync bases (read-only snapshots), absent for a whole sync. */
  base?: { source: string; target: string };
  /** Where the snapshots of this sync go (each path must not exist; its parent must). */
  snapshots: { cut: string; now: string; after: string };
  rule: SyncConflictRule;
  /** Names used in messages ("lc1/app"). */
  labels: { source: string; target: string };
  /** How many conflicting paths to name in the result (default 50). */
  conflictLimit?: number;
  /**
   * The target stays untouched by anyone else until the caller lets it go (the hold of a switch):
   * no snapshot is taken after the copy (a btrfs transaction commit) and the copied paths are verified
   * on the live target. The caller re-bases the target on `now` (see SyncDiskOutcome.baseIsNow). Only
   * for `sender-wins`; ignored otherwise.
   */
  final?: boolean;
  /**
   * The target's side, done ahead (prepareFinal): its `now` snapshot exists and these are its changes
   * since its base. Only with `final` (nobody writes the target from then on).
   */
  prepared?: { received: ChangeSet };
  /**
   * Paths a previous final sync wrote into one side after that side's base was taken (SyncBase.ahead),
   * for `sender-wins` only: they are synced again whatever the change sets say, and when that side
   * is the source the files it patched in place may be patched onward (see patchableFiles).
   */
  ahead?: { side: 'source' | 'target'; paths: readonly string[]; patched: readonly string[] };
}

export interface SyncDiskOutcome {
  method: 'incremental' | 'whole';
  /**
   * Incremental, and nothing to carry (no change on either side, none on the source of a
   * receiver-wins sync, or only changes the target keeps as conflicts): nothing was written and no `after` snapshot was taken (`now` is the
   * target's state after the sync).
   */
  unchanged?: boolean;
  /**
   * The target's base for the next sync is `now` (its state before the copy): nothing to carry, or a
   * final sync. Otherwise it is `after`. A final sync's target is then ahead of its base by the paths
   * it wrote (`ahead`), which the caller records so that the next sync looks at them again.
   */
  baseIsNow?: boolean;
  copier?: 'in-process' | 'rsync';
  /** Files of those paths patched in place: only the byte ranges changed since the base were written. */
  patched?: number;
  /**
   * A final sync that wrote something: the paths it wrote into the target (`paths`) and those it
   * patched in place (`patched`), by which the target is now ahead of its base (`now`).
   */
  ahead?: { paths: string[]; patched: string[] };
  snapshotMs: number;
  diffMs: number;
  copyMs: number;
  verifyMs: number;
  /** File bytes rsync wrote. */
  bytes: number;
  /** Paths synced (whole: entries rsync looked at). */
  files: number;
  conflicts: { count: number; paths: string[] };
}

/** rsync's attribute set: nanosecond mtimes, hard links, ACLs, xattrs, numeric owners. */
const RSYNC_FLAGS = ['-aHAX', '--numeric-ids', '--modify-window=-1', '--stats'];

const timed = async <T>(run: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const value = await run();
  return [value, performance.now() - started];
};

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

const isDirectory = async (p: string): Promise<boolean> => (await statOrUndefined(p))?.isDirectory() ?? false;

/** The renamed directories (present in `root`) of the change sets, taken whole. */
async function addMovedDirectories(root: string, sets: ChangeSet[], into: Set<string>): Promise<void> {
  for (const set of sets)
    for (const moved of set.moved)
      if (await isDirectory(join(root, moved))) await addSubtree(root, moved, into);
}

/** Every other name of each hard-linked regular file in the list (`btrfs inspect-internal inode-resolve`). */
async function addHardLinkNames(root: string, into: Set<string>): Promise<void> {
  const seen = new Set<number>();
  for (const relative of [...into]) {
    const stat = await statOrUndefined(join(root, relative));
    if (!stat?.isFile() || stat.nlink < 2 || seen.has(stat.ino)) continue;
    seen.add(stat.ino);
    const out = await exec(['btrfs', 'inspect-internal', 'inode-resolve', String(stat.ino), root]);
    for (const line of out.stdout.split('\n'))
      if (line.startsWith(`${root}/`)) into.add(path.relative(root, line));
  }
}

/** Whether the target's change excludes `p`: it changed p, or removed/moved a directory above it. */
async function heldByTarget(p: string, changed: Set<string>, now: string): Promise<boolean> {
  if (changed.has(p)) return true;
  for (let parent = path.dirname(p); parent !== '.' && parent !== '/'; parent = path.dirname(parent))
    if (changed.has(parent) && !(await isDirectory(join(now, parent)))) return true;
  return false;
}

async function rsync(
  argv: string[],
  labels: SyncDiskOptions['labels'],
): Promise<{ bytes: number; files: number }> {
  try {
    // Exit 24 ("vanished") is how rsync reports a listed directory absent from the source, which it
    // then deletes: the source is a read-only snapshot, nothing else can vanish from it.
    const out = await exec(['rsync', ...RSYNC_FLAGS, ...argv], {
      timeoutMs: 60 * 60_000,
      maxBuffer: 64 << 20,
      okCodes: [0, 24],
    });
    const number = (label: string): number =>
      Number(new RegExp(`${label}: ([\\d,]+)`).exec(out.stdout)?.[1]?.replace(/,/g, '') ?? 0);
    return { bytes: number('Total transferred file size'), files: number('Number of files') };
  } catch (error) {
    if (!isUnderstudyError(error)) throw error;
    throw new UnderstudyError(
      'DISK_SYNC_FAILED',
      `The sync of ${labels.source} onto ${labels.target} failed: ${error.message}`,
      {
        cause: error,
        details: { ...error.details },
        hint: `${labels.source} is untouched. Fix the cause and run the sync again: it carries what is still missing.`,
      },
    );
  }
}

/** Syncs one disk; see the file comment. The caller owns (and removes) the three snapshots. */
export async function syncDisk(o: SyncDiskOptions): Promise<SyncDiskOutcome> {
  const limit = o.conflictLimit ?? 50;
  let snapshotMs = 0;
  const snap = async (source: string, target: string): Promise<void> => {
    const [, ms] = await timed(() => snapshot({ source, target, readOnly: true }));
    snapshotMs += ms;
  };
  const prepared = o.base && o.final ? o.prepared : undefined;
  await Promise.all([
    snap(o.source, o.snapshots.cut),
    o.base && !prepared ? snap(o.target, o.snapshots.now) : undefined,
  ]);
  if (!o.base) {
    const [copied, copyMs] = await timed(() =>
      rsync(['--delete', `${o.snapshots.cut}/`, `${o.target}/`], o.labels),
    );
    await snap(o.target, o.snapshots.after);
    return {
      method: 'whole',
      copier: 'rsync',
      snapshotMs,
      diffMs: 0,
      copyMs,
      verifyMs: 0,
      ...copied,
      conflicts: { count: 0, paths: [] },
    };
  }
  const base = o.base;
  const { cut, now, after } = o.snapshots;

  const [list, diffMs] = await timed(async () => {
    const [sent, received] = await Promise.all([
      changedPaths(base.source, cut),
      prepared ? prepared.received : changedPaths(base.target, now),
    ]);
    if (sent.paths.size === 0 && (o.rule === 'receiver-wins' || received.paths.size === 0)) return undefined;
    const conflicts: string[] = [];
    const selected = new Set<string>();
    if (o.rule === 'sender-wins') {
      for (const p of sent.paths) selected.add(p);
      for (const p of received.paths) selected.add(p);
      for (const p of o.ahead?.paths ?? []) selected.add(p);
      await addMovedDirectories(cut, [sent, received], selected);
      await addHardLinkNames(cut, selected);
    } else {
      const candidates = new Set(sent.paths);
      await addMovedDirectories(cut, [sent], candidates);
      await addHardLinkNames(cut, candidates);
      for (const p of candidates) {
        if (!(await heldByTarget(p, received.paths, now))) selected.add(p);
        else if (!((await isDirectory(join(cut, p))) && (await isDirectory(join(now, p))))) conflicts.push(p);
      }
    }
    // Writing an entry changes its directory's times on the target: the directories of the listed
    // paths are listed too, so that rsync sets their times (and attributes) back afterwards.
    for (const p of [...selected]) {
      const parent = path.dirname(p);
      if (selected.has(parent) || p === '.') continue;
      if (o.rule === 'sender-wins' || !(await heldByTarget(parent, received.paths, now)))
        selected.add(parent);
    }
    // A path absent on both sides (a transient name of the stream) needs nothing.
    const paths = await withoutTransient([...selected].sort(), [cut, o.target]);
    const patches =
      o.rule === 'sender-wins'
        ? await patchableFiles({
            sent,
            received,
            paths,
            base: base.source,
            cut,
            target: o.target,
            now,
            aheadPatched: new Set(o.ahead?.side === 'source' ? o.ahead.patched : []),
            targetAheadPatched: new Set(o.ahead?.side === 'target' ? o.ahead.patched : []),
          })
        : [];
    return { paths, conflicts: conflicts.sort(), patches, sent, received };
  });

  // Nothing to copy (no change, or only the target's own: conflicts kept on a system disk).
  if (!list || list.paths.length === 0)
    return {
      method: 'incremental',
      unchanged: true,
      baseIsNow: true,
      snapshotMs,
      diffMs,
      copyMs: 0,
      verifyMs: 0,
      bytes: 0,
      files: 0,
      conflicts: { count: list?.conflicts.length ?? 0, paths: (list?.conflicts ?? []).slice(0, limit) },
    };
  const final = o.final === true && o.rule === 'sender-wins';
  const patched = new Set(list.patches.map((p) => p.relative));
  const whole = list.paths.filter((p) => !patched.has(p));
  // A path neither side changed but in its owner, mode or times (a directory listed for its times).
  const attributesOnly = (p: string): boolean =>
    (!list.sent.paths.has(p) || list.sent.edits.has(p)) &&
    (!list.received.paths.has(p) || list.received.edits.has(p));
  const plan = await planCopy(cut, o.target, whole, o.labels, attributesOnly);
  // `cut` does not change: its side of the verification is hashed while the copy runs. Paths the
  // in-process copy takes were found without extended attributes on either side (and it sets none).
  const hashOptions = { xattrs: plan.kind !== 'in-process' };
  const expectedHash = hashPaths(cut, whole, hashOptions);
  expectedHash.catch(() => undefined); // awaited below; a copy that fails first must not leave it unhandled
  const [copied, copyMs] = await timed(async () => {
    const bytes = await copyPlanned(cut, o.target, plan, o.labels);
    return bytes + (await patchFiles({ source: cut, target: o.target, patches: list.patches }));
  });
  // The copy is checked on a snapshot of the target taken now (the target's next base), or, in a
  // final sync, on the live target nobody else writes until the caller lets it go.
  const checked = final ? o.target : after;
  if (!final) await snap(o.target, after);
  const [, verifyMs] = await timed(async () => {
    const [expected, actual, patchesDiffering] = await Promise.all([
      expectedHash,
      hashPaths(checked, whole, hashOptions),
      differingPatches({ source: cut, target: checked, patches: list.patches }),
    ]);
    if (expected.digest !== actual.digest || patchesDiffering.length > 0)
      throw new UnderstudyError(
        'DISK_SYNC_VERIFY_FAILED',
        `After the sync of ${o.labels.source} onto ${o.labels.target}, these paths differ: ${[...differingPaths(expected, actual), ...patchesDiffering].slice(0, 10).join(', ')}`,
        { hint: 'Run the sync again; if the paths still differ, report it with these paths.' },
      );
  });
  return {
    method: 'incremental',
    ...(final ? { baseIsNow: true, ahead: { paths: list.paths, patched: [...patched] } } : {}),
    snapshotMs,
    diffMs,
    copyMs,
    verifyMs,
    bytes: copied,
    files: list.paths.length,
    ...(plan.kind !== 'nothing'
      ? { copier: plan.kind }
      : list.patches.length > 0
        ? { copier: 'in-process' }
        : {}),
    ...(list.patches.length > 0 ? { patched: list.patches.length } : {}),
    conflicts: { count: list.conflicts.length, paths: list.conflicts.slice(0, limit) },
  };
}

/**
 * The listed files that can be patched in place (patch-files.ts): changed by the source only in their
 * bytes (never truncated below the base's size, not renamed, not below a renamed directory), not
 * changed by the target, a single-named regular file on both sides and in the source's base, and the
 * target's file as large as the base's (the bases of a sender-wins pair hold the same files).
 *
 * `aheadPatched`: files a final sync patched into the source after the source's base was taken (the
 * target's file is then the one the source held right after that patch, and may be larger than the
 * source's base). The source's changes since its base include every byte that patch wrote, so the
 * target's file equals the source's base outside the ranges to write; only a target file smaller than
 * the source's base is refused.
 *
 * `targetAheadPatched`: files a previous final sync the same way patched into the target after the
 * target's base was taken (the next sync goes the same way: a reversed switch, a crash just after its
 * final sync). The target's changes since its base then include that patch's bytes, and may include
 * the target's own writes. Its file is patched onward only when it equals the source's base (the
 * file that patch wrote): bytes only changed since its base, one name, the base's size, and the same
 * bytes as the source's base wherever the target changed it since its base (the patch's bytes and
 * any of its own; everywhere else it is its base's file, which differs from the source's base only
 * where that patch wrote). Those ranges are read on both sides: the cost follows the patch, not the
 * file. A file the source did not change since is patched with no range (its attributes only).
 */
async function patchableFiles(o: {
  sent: ChangeSet;
  received: ChangeSet;
  paths: readonly string[];
  base: string;
  cut: string;
  target: string;
  /** The target's snapshot the received change set ends at. */
  now: string;
  aheadPatched: ReadonlySet<string>;
  targetAheadPatched: ReadonlySet<string>;
}): Promise<FilePatch[]> {
  const moved = [...o.sent.moved, ...o.received.moved];
  const patches: FilePatch[] = [];
  for (const relative of o.paths) {
    const onward = o.targetAheadPatched.has(relative);
    const edit =
      o.sent.edits.get(relative) ??
      (onward && !o.sent.paths.has(relative) ? { ranges: [], truncatedTo: [] } : undefined);
    const targetEdit = o.received.paths.has(relative) ? o.received.edits.get(relative) : undefined;
    if (!edit || (o.received.paths.has(relative) && !(onward && targetEdit))) continue;
    if (moved.some((m) => m === '.' || relative.startsWith(`${m}/`))) continue;
    const [was, cutStat, targetStat, nowStat] = await Promise.all([
      statOrUndefined(join(o.base, relative)),
      statOrUndefined(join(o.cut, relative)),
      statOrUndefined(join(o.target, relative)),
      onward ? statOrUndefined(join(o.now, relative)) : undefined,
    ]);
    const single = (s: Stats | undefined): s is Stats => s?.isFile() === true && s.nlink === 1;
    if (!single(was) || !single(cutStat) || !single(targetStat)) continue;
    const sizeFits = o.aheadPatched.has(relative)
      ? targetStat.size >= was.size
      : targetStat.size === was.size;
    if (!sizeFits || edit.truncatedTo.some((size) => size < was.size)) continue;
    if (onward) {
      if (!single(nowStat) || nowStat.size !== was.size || nowStat.ino !== targetStat.ino) continue;
      const sameAsBase = await sameInEdit({
        left: o.now,
        right: o.base,
        relative,
        edit: targetEdit ?? { ranges: [], truncatedTo: [] },
        size: was.size,
      });
      if (!sameAsBase) continue;
    }
    patches.push({ relative, edit });
  }
  return patches;
}

/** How the listed paths will be copied: in this process (with its plan), by rsync, or not at all. */
type CopyPlan =
  | { kind: 'nothing' }
  | { kind: 'in-process'; plan: ApplyPlan; paths: string[] }
  | { kind: 'rsync'; paths: string[] };

const syncFailed = (labels: SyncDiskOptions['labels'], error: unknown): UnderstudyError =>
  isUnderstudyError(error)
    ? error
    : new UnderstudyError(
        'DISK_SYNC_FAILED',
        `The sync of ${labels.source} onto ${labels.target} failed: ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
          hint: `${labels.source} is untouched. Fix the cause and run the sync again: it carries what is still missing.`,
        },
      );

/**
 * Decides how the listed paths go from the snapshot `cut` onto the live `target`: in this process
 * (apply-paths.ts), or with rsync when a path needs what only rsync does exactly (extended
 * attributes, ACLs, special files). Throws DISK_SYNC_FAILED naming the two disks.
 */
async function planCopy(
  cut: string,
  target: string,
  paths: string[],
  labels: SyncDiskOptions['labels'],
  attributesOnly: (relative: string) => boolean,
): Promise<CopyPlan> {
  if (paths.length === 0) return { kind: 'nothing' };
  try {
    const plan = await planApply({ source: cut, target, paths });
    // Directories on both sides whose only change is their owner, mode or times keep their extended
    // attributes, which neither side changed: the copy only sets those three (no getfattr needed).
    const onlyDirectoryAttributes =
      plan?.entries.every(
        (e) => e.source?.kind === 'dir' && e.target?.kind === 'dir' && attributesOnly(e.relative),
      ) === true;
    if (plan && (onlyDirectoryAttributes || !(await anyXattrs(planPaths({ source: cut, target, plan })))))
      return { kind: 'in-process', plan, paths };
    return { kind: 'rsync', paths };
  } catch (error) {
    throw syncFailed(labels, error);
  }
}

/** Copies what `planCopy` decided; returns the file bytes written. Throws DISK_SYNC_FAILED. */
async function copyPlanned(
  cut: string,
  target: string,
  plan: CopyPlan,
  labels: SyncDiskOptions['labels'],
): Promise<number> {
  if (plan.kind === 'nothing') return 0;
  if (plan.kind === 'in-process') {
    try {
      return await applyPlan({ source: cut, target, plan: plan.plan });
    } catch (error) {
      throw syncFailed(labels, error);
    }
  }
  return rsyncPaths({ source: cut, target, paths: plan.paths, labels });
}

/** Makes `target` the source's whole with rsync (every path walked). Throws DISK_SYNC_FAILED. */
export function rsyncWhole(o: {
  source: string;
  target: string;
  labels: SyncDiskOptions['labels'];
}): Promise<{ bytes: number; files: number }> {
  return rsync(['--delete', `${o.source}/`, `${o.target}/`], o.labels);
}

/**
 * Makes each listed path of `target` the source's with rsync (extended attributes, ACLs, special
 * files): a path the source lacks is removed; a directory's entries are not. Returns the file bytes
 * written. Throws DISK_SYNC_FAILED naming the two disks.
 */
export async function rsyncPaths(o: {
  source: string;
  target: string;
  paths: readonly string[];
  labels: SyncDiskOptions['labels'];
}): Promise<number> {
  const listDir = await fs.mkdtemp(path.join(os.tmpdir(), 'understudy-sync-'));
  try {
    const listFile = path.join(listDir, 'paths');
    await fs.writeFile(listFile, o.paths.map((p) => `${p}\0`).join(''));
    const copied = await rsync(
      [
        '--from0',
        `--files-from=${listFile}`,
        '--delete-missing-args',
        '--force',
        '--no-implied-dirs',
        `${o.source}/`,
        `${o.target}/`,
      ],
      o.labels,
    );
    return copied.bytes;
  } finally {
    await fs.rm(listDir, { recursive: true, force: true });
  }
}
