/**
 * What changed in a subvolume between two of its read-only snapshots, by path: the metadata-only
 * incremental send (`btrfs send --no-data -p base now`) compares the two trees inside the kernel, so
 * its cost follows the change, not the number of files, and no file data is read. Every path a
 * command names (its target, a rename's destination, a link's source, a clone's source) is collected.
 *
 * The paths describe the change as `btrfs receive` would apply it, so a few are transient: new
 * entries first appear under orphan names (`o<ino>-<gen>-<n>`) and are renamed into place, and a
 * deleted directory may be renamed to one before it is emptied. A transient path exists in neither
 * snapshot, which is how the sync treats it (a deletion of something absent: nothing). The entries
 * inside a renamed directory are not named by the stream; `moved` lists rename sources and
 * destinations so that the sync can take the directories among them whole.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnderstudyError, formatArgv, isErrno, spawnProcess } from '../../core/index.ts';
import { SendStreamParser, readString, readU64, sendAttributes } from './send-stream.ts';

/**
 * The paths of a change set that exist under at least one of `roots` (links not followed), in their
 * order: a transient name of the stream exists under none, and needs nothing.
 */
export async function withoutTransient(
  paths: readonly string[],
  roots: readonly string[],
): Promise<string[]> {
  const kept: string[] = [];
  for (const relative of paths)
    for (const root of roots)
      if (await presentAt(relative === '.' ? root : path.join(root, relative))) {
        kept.push(relative);
        break;
      }
  return kept;
}

async function presentAt(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return false;
    throw error;
  }
}

/**
 * What the stream did to one path's content when it only changed bytes of an existing file in
 * place: the byte ranges it changed (`update-extent`, the no-data form of a write, a clone or a
 * hole) and the sizes it truncated to. A path named by any other command (created, renamed, linked,
 * removed, its extended attributes changed…) has no edit: it must be copied whole.
 */
export interface ContentEdit {
  ranges: [offset: number, length: number][];
  truncatedTo: number[];
}

export interface ChangeSet {
  /** Relative paths ("." is the root) named by the stream. */
  paths: Set<string>;
  /** Sources and destinations of renames. */
  moved: Set<string>;
  /** Paths whose only changes were to bytes in place or to their owner, mode or times; see ContentEdit. */
  edits: Map<string, ContentEdit>;
  /** Size of the metadata stream, bytes. */
  streamBytes: number;
  commands: number;
}

const pathAttributes = [
  sendAttributes.path,
  sendAttributes.pathTo,
  sendAttributes.pathLink,
  sendAttributes.clonePath,
];

/** Commands that change only a path's attributes, which the copy sets from the source anyway. */
const attributeOnly = new Set(['chmod', 'chown', 'utimes']);

const normalise = (p: string): string => (p === '' || p === '/' ? '.' : p.replace(/^\/+|\/+$/g, ''));

/**
 * The change from `base` to `now`, two read-only snapshots of one subvolume (or `now` a snapshot of
 * a writable clone of `base`). Throws DISK_SYNC_FAILED naming the snapshots when send fails.
 */
export async function changedPaths(base: string, now: string): Promise<ChangeSet> {
  const argv = ['btrfs', 'send', '-q', '--no-data', '-p', base, now];
  const send = spawnProcess(argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = send.child.stdout;
  if (!out) throw new UnderstudyError('INTERNAL', 'btrfs send started without a stdout pipe');
  const set: ChangeSet = {
    paths: new Set(),
    moved: new Set(),
    edits: new Map(),
    streamBytes: 0,
    commands: 0,
  };
  // Paths named by a command other than an in-place edit or an attribute change: copied whole.
  const whole = new Set<string>();
  let parseError: unknown;
  // Paths named only by `utimes`, with the mtime the stream sets: reading a file changes its atime,
  // which the stream carries too; such a path is dropped below unless its mtime changed.
  const timesOnly = new Map<string, bigint>();
  const editOf = (p: string): ContentEdit => {
    let edit = set.edits.get(p);
    if (!edit) set.edits.set(p, (edit = { ranges: [], truncatedTo: [] }));
    return edit;
  };
  const other = new Set<string>();
  const parser = new SendStreamParser((command) => {
    // The stream's first command names the snapshot itself, not a path in it.
    if (command.name === 'snapshot' || command.name === 'subvol') return;
    for (const attribute of pathAttributes) {
      const value = readString(command.attributes.get(attribute));
      if (value === undefined) continue;
      const p = normalise(value);
      set.paths.add(p);
      if (command.name === 'rename') set.moved.add(p);
      if (attribute === sendAttributes.path && command.name === 'update-extent') {
        const offset = readU64(command.attributes.get(sendAttributes.fileOffset));
        const length = readU64(command.attributes.get(sendAttributes.size));
        if (offset === undefined || length === undefined) whole.add(p);
        else editOf(p).ranges.push([offset, length]);
      } else if (attribute === sendAttributes.path && command.name === 'truncate') {
        const size = readU64(command.attributes.get(sendAttributes.size));
        if (size === undefined) whole.add(p);
        else editOf(p).truncatedTo.push(size);
      } else if (attribute === sendAttributes.path && attributeOnly.has(command.name)) editOf(p);
      else whole.add(p);
      if (command.name === 'utimes' && attribute === sendAttributes.path) {
        const mtime = command.attributes.get(sendAttributes.mtime);
        if (mtime && mtime.length >= 12)
          timesOnly.set(p, mtime.readBigUInt64LE(0) * 1_000_000_000n + BigInt(mtime.readUInt32LE(8)));
      } else other.add(p);
    }
  });
  out.on('data', (chunk: Buffer) => {
    if (parseError) return;
    try {
      parser.push(chunk);
    } catch (error) {
      parseError = error;
      send.child.kill('SIGKILL');
    }
  });
  const result = await send.done;
  if (parseError) throw parseError;
  if (result.exitCode !== 0) {
    const stderr = result.stderr.trim().split('\n').slice(-6).join('\n');
    throw new UnderstudyError(
      'DISK_SYNC_FAILED',
      `${formatArgv(argv)} failed (exit ${String(result.exitCode ?? result.signal)})${stderr ? `: ${stderr}` : ''}`,
      { hint: `Both ${base} and ${now} must be read-only snapshots of one disk's history.` },
    );
  }
  parser.end();
  for (const [p, mtimeNs] of timesOnly) {
    if (other.has(p)) continue;
    const was = await fs
      .lstat(p === '.' ? base : path.join(base, p), { bigint: true })
      .catch(() => undefined);
    if (was?.mtimeNs === mtimeNs) set.paths.delete(p);
  }
  for (const p of whole) set.edits.delete(p);
  set.streamBytes = parser.bytes;
  set.commands = parser.commands;
  return set;
}
