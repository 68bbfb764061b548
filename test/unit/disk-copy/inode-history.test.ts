import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { historyChangesOfInodes, type ChangedInode } from '../../../src/disk-copy/index.ts';

const inode = (more: Partial<ChangedInode>): ChangedInode => ({
  ino: 300,
  kind: 'file',
  created: false,
  size: 0,
  nbytes: 0,
  nlink: 1,
  nocow: false,
  paths: ['f'],
  newerEntry: false,
  inline: false,
  extents: [],
  ...more,
});

void describe('the write history of a pass found by a transid search', () => {
  void it('a new file is a creation and one write of its content; an old one a write per new extent', () => {
    const changes = historyChangesOfInodes([
      inode({ paths: ['new.txt'], created: true, newerEntry: true, size: 12 }),
      inode({
        paths: ['log'],
        size: 1 << 20,
        extents: [
          [0, 4096],
          [65536, 8192],
        ],
      }),
      inode({ paths: ['empty'], created: true, newerEntry: true }),
    ]);
    assert.deepEqual(changes, [
      { op: 'create', path: 'new.txt' },
      { op: 'write', path: 'new.txt', offset: 0, length: 12 },
      { op: 'write', path: 'log', offset: 0, length: 4096 },
      { op: 'write', path: 'log', offset: 65536, length: 8192 },
      { op: 'create', path: 'empty' },
    ]);
  });

  void it('a renamed file reads as a creation; a changed directory is not a change of its own; new directories, links and nodes are', () => {
    const changes = historyChangesOfInodes([
      inode({ paths: ['moved'], newerEntry: true, size: 3 }),
      inode({ kind: 'dir', paths: [''] }),
      inode({ kind: 'dir', paths: ['d'], created: true, newerEntry: true }),
      inode({ kind: 'symlink', paths: ['l'], created: true, newerEntry: true }),
      inode({ kind: 'other', paths: ['fifo'], created: true, newerEntry: true }),
      inode({ paths: ['a', 'b'], nlink: 2, extents: [[0, 10]] }),
    ]);
    assert.deepEqual(changes, [
      { op: 'create', path: 'moved' },
      { op: 'write', path: 'moved', offset: 0, length: 3 },
      { op: 'mkdir', path: 'd' },
      { op: 'symlink', path: 'l' },
      { op: 'mknod', path: 'fifo' },
      { op: 'write', path: 'a', offset: 0, length: 10 },
      { op: 'write', path: 'b', offset: 0, length: 10 },
    ]);
  });
});
