/**
 * The copy step of an incremental sync done in this process, without rsync (whose local mode sleeps
 * ~40 ms at its exit, more than the rest of a small sync): the listed paths of a live tree are made
 * what they are in a read-only snapshot, with rsync's semantics for `-aHA --files-from
 * --delete-missing-args --force --no-implied-dirs`:
 *   - a path absent from the snapshot is removed from the tree (a directory with what it holds);
 *   - a file, symlink or hard-link group is written under a temporary name in its directory and
 *     renamed into place (a crash leaves the old or the new version, never a partial one); owner,
 *     mode and times follow;
 *   - a directory is created when missing; its owner, mode and times are set last, deepest first
 *     (writing entries changes a directory's times);
 *   - every other name of a hard-linked file listed is linked to the same new inode.
 * Every path is resolved inside its root without following a link: a path below a component that is
 * not a directory (a symlink, on either side) does not exist for the sync. What this cannot do
 * exactly (extended attributes or ACLs, on either side; a device, FIFO or socket in the snapshot) is
 * reported by `planApply` as `undefined`, so that the caller uses rsync instead.
 *
 * Times are set to the microsecond (Node's utimes), not the nanosecond rsync keeps; the sync's
 * verification (tree-hash.ts) does not compare times.
 */
import { randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isErrno } from '../../core/index.ts';

type Kind = 'file' | 'dir' | 'symlink';

interface Entry {
  relative: string;
  /** In the snapshot (undefined: absent). */
  source?: { kind: Kind; stat: BigIntStats };
  /** In the live tree before the copy (undefined: absent). */
  target?: { kind: Kind | 'other' };
}

export interface ApplyPlan {
  entries: Entry[];
}

const join = (root: string, relative: string): string =>
  relative === '.' ? root : path.join(root, relative);

function kindOf(stat: BigIntStats): Kind | 'other' {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  return 'other';
}

/**
 * lstat of `relative` in `root` when every component above it is a directory (not a link), else
 * undefined; `dirs` caches the answer per ancestor.
 */
async function statInside(
  root: string,
  relative: string,
  dirs: Map<string, boolean>,
): Promise<BigIntStats | undefined> {
  if (relative !== '.') {
    const parts = relative.split('/');
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      let isDir = dirs.get(ancestor);
      if (isDir === undefined) {
        isDir = (await lstatOrUndefined(join(root, ancestor)))?.isDirectory() ?? false;
        dirs.set(ancestor, isDir);
      }
      if (!isDir) return undefined;
    }
  }
  return lstatOrUndefined(join(root, relative));
}

async function lstatOrUndefined(p: string): Promise<BigIntStats | undefined> {
  try {
    return await fs.lstat(p, { bigint: true });
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

/**
 * Looks at every listed path (sorted, parents before children) on both sides; undefined when one
 * needs rsync (a device, FIFO or socket in the snapshot). Extended attributes are checked by the
 * caller (one getfattr for every path).
 */
export async function planApply(o: {
  source: string;
  target: string;
  paths: readonly string[];
}): Promise<ApplyPlan | undefined> {
  const sourceDirs = new Map<string, boolean>();
  const targetDirs = new Map<string, boolean>();
  const entries: Entry[] = [];
  for (const relative of o.paths) {
    const [s, t] = await Promise.all([
      statInside(o.source, relative, sourceDirs),
      statInside(o.target, relative, targetDirs),
    ]);
    const entry: Entry = { relative };
    if (s) {
      const kind = kindOf(s);
      if (kind === 'other') return undefined;
      entry.source = { kind, stat: s };
    }
    if (t) entry.target = { kind: kindOf(t) };
    entries.push(entry);
  }
  // Writing below a component of the live tree that is not a directory would go through it (a link
  // could lead out of the tree): each ancestor of a path to write must be a directory there, or be
  // listed as one that the copy makes a directory.
  const madeDirs = new Set(entries.filter((e) => e.source?.kind === 'dir').map((e) => e.relative));
  for (const e of entries) {
    if (!e.source || e.relative === '.') continue;
    const parts = e.relative.split('/');
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      if (madeDirs.has(ancestor)) continue;
      if (targetDirs.get(ancestor) ?? (await lstatOrUndefined(join(o.target, ancestor)))?.isDirectory())
        continue;
      throw new Error(
        `${join(o.target, ancestor)} is not a directory (the copy would write ${e.relative} through it)`,
      );
    }
  }
  return { entries };
}

/** The absolute paths a plan reads or replaces (for the check of extended attributes). */
export function planPaths(o: { source: string; target: string; plan: ApplyPlan }): string[] {
  const out: string[] = [];
  for (const e of o.plan.entries) {
    if (e.source) out.push(join(o.source, e.relative));
    if (e.target) out.push(join(o.target, e.relative));
  }
  return out;
}

const seconds = (ns: bigint): number => Number(ns / 1000n) / 1e6;

async function setAttributes(p: string, stat: BigIntStats, link: boolean): Promise<void> {
  const atime = seconds(stat.atimeNs);
  const mtime = seconds(stat.mtimeNs);
  if (link) {
    await fs.lchown(p, Number(stat.uid), Number(stat.gid));
    await fs.lutimes(p, atime, mtime);
    return;
  }
  // chown before chmod: changing the owner clears set-user-ID and set-group-ID bits.
  await fs.chown(p, Number(stat.uid), Number(stat.gid));
  await fs.chmod(p, Number(stat.mode & 0o7777n));
  await fs.utimes(p, atime, mtime);
}

const temporaryName = (final: string): string =>
  path.join(path.dirname(final), `.${path.basename(final).slice(0, 200)}.${randomBytes(3).toString('hex')}`);

/** Runs `work` on every item, at most `limit` at a time; rejects with the first failure once all ended. */
async function inParallel<T>(items: T[], work: (item: T) => Promise<void>, limit = 8): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** Applies a plan (see the file comment); returns the file bytes written. Throws the first fs error. */
export async function applyPlan(o: { source: string; target: string; plan: ApplyPlan }): Promise<number> {
  const { entries } = o.plan;
  // 1. What must go: paths absent from the snapshot, and entries whose type changes.
  for (const e of entries) {
    if (!e.target) continue;
    const targetPath = join(o.target, e.relative);
    if (!e.source) await fs.rm(targetPath, { recursive: true, force: true });
    else if (e.target.kind === 'dir' && e.source.kind !== 'dir')
      await fs.rm(targetPath, { recursive: true, force: true });
    else if (e.target.kind !== 'dir' && e.source.kind === 'dir') await fs.rm(targetPath, { force: true });
  }
  // 2. Directories, parents first (the list is sorted).
  for (const e of entries)
    if (e.source?.kind === 'dir' && e.target?.kind !== 'dir')
      await fs.mkdir(join(o.target, e.relative), { mode: 0o700 });
  // 3. Files and symlinks, each renamed into place; the names of one inode share it. Entries are
  // independent but for the names of one inode (written one after the other): they go in parallel.
  let bytes = 0;
  const groups = new Map<string, Entry[]>();
  for (const e of entries) {
    const source = e.source;
    if (!source || source.kind === 'dir') continue;
    const key =
      source.kind === 'file' && source.stat.nlink > 1n ? `ino:${source.stat.ino}` : `path:${e.relative}`;
    const group = groups.get(key);
    if (group) group.push(e);
    else groups.set(key, [e]);
  }
  const writeGroup = async (group: Entry[]): Promise<void> => {
    let first: string | undefined;
    for (const e of group) {
      const source = e.source!;
      const from = join(o.source, e.relative);
      const final = join(o.target, e.relative);
      const temporary = temporaryName(final);
      try {
        if (source.kind === 'symlink') {
          await fs.symlink(await fs.readlink(from), temporary);
          await setAttributes(temporary, source.stat, true);
        } else if (first !== undefined) await fs.link(first, temporary);
        else {
          await fs.copyFile(from, temporary, fs.constants.COPYFILE_EXCL);
          await setAttributes(temporary, source.stat, false);
          bytes += Number(source.stat.size);
        }
        await fs.rename(temporary, final);
      } catch (error) {
        await fs.rm(temporary, { force: true });
        throw error;
      }
      first ??= final;
    }
  };
  await inParallel([...groups.values()], writeGroup);
  // 4. Directories' owner, mode and times, once nothing more is written into them (setting a
  // directory's attributes does not touch its parent's times, so in any order).
  await inParallel(
    entries.filter((e) => e.source?.kind === 'dir'),
    (e) => setAttributes(join(o.target, e.relative), e.source!.stat, false),
  );
  return bytes;
}
