/**
 * The write history's changes (history.ts) read from the commands of a btrfs send stream, or from
 * the inodes a transid search found changed (coarser: no deletions, a rename reads as a creation).
 */
import type { HistoryChange, HistoryOp } from '../history.ts';
import { readString, readU64, sendAttributes, type SendCommand } from './send-stream.ts';
import type { ChangedInode } from './transid.ts';

const opOfCommand: Partial<Record<SendCommand['name'], HistoryOp>> = {
  write: 'write',
  'update-extent': 'write',
  'encoded-write': 'write',
  clone: 'clone',
  truncate: 'truncate',
  mkfile: 'create',
  mkdir: 'mkdir',
  symlink: 'symlink',
  mknod: 'mknod',
  mkfifo: 'mknod',
  mksock: 'mknod',
  link: 'link',
  rename: 'rename',
  unlink: 'unlink',
  rmdir: 'rmdir',
  'set-xattr': 'set-xattr',
  'remove-xattr': 'remove-xattr',
  chmod: 'chmod',
  chown: 'chown',
};

/** The change `command` records, or undefined for a command the history does not keep (e.g. utimes). */
export function historyChangeOf(command: SendCommand): HistoryChange | undefined {
  const op = opOfCommand[command.name];
  if (!op) return undefined;
  const attrs = command.attributes;
  const change: HistoryChange = { op, path: readString(attrs.get(sendAttributes.path)) ?? '' };
  if (op === 'write') {
    change.offset = readU64(attrs.get(sendAttributes.fileOffset));
    change.length =
      command.name === 'update-extent'
        ? readU64(attrs.get(sendAttributes.size))
        : command.name === 'encoded-write'
          ? readU64(attrs.get(sendAttributes.unencodedFileLength))
          : (attrs.get(sendAttributes.data)?.length ?? 0);
  } else if (op === 'clone') {
    change.offset = readU64(attrs.get(sendAttributes.fileOffset));
    change.length = readU64(attrs.get(sendAttributes.cloneLength));
  } else if (op === 'truncate') {
    change.length = readU64(attrs.get(sendAttributes.size));
  }
  const pathTo =
    readString(attrs.get(sendAttributes.pathTo)) ?? readString(attrs.get(sendAttributes.pathLink));
  if (pathTo !== undefined) change.pathTo = pathTo;
  return change;
}

const createOp: Record<ChangedInode['kind'], HistoryOp> = {
  file: 'create',
  dir: 'mkdir',
  symlink: 'symlink',
  other: 'mknod',
};

/**
 * The changes inodes found by a transid search stand for: a new name is a creation (a file's
 * content then one write), a file otherwise one write per new extent; a directory that only
 * changed its entries is its entries' changes, not one of its own. The search does not see removed
 * inodes.
 */
export function historyChangesOfInodes(inodes: readonly ChangedInode[]): HistoryChange[] {
  const changes: HistoryChange[] = [];
  for (const inode of inodes) {
    for (const name of inode.paths) {
      const fresh = inode.created || inode.newerEntry;
      if (fresh) changes.push({ op: createOp[inode.kind], path: name });
      if (inode.kind !== 'file') continue;
      if (fresh && inode.size > 0) changes.push({ op: 'write', path: name, offset: 0, length: inode.size });
      else if (!fresh)
        for (const [offset, length] of inode.extents)
          changes.push({ op: 'write', path: name, offset, length });
    }
  }
  return changes;
}
