import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ownChanges, type ChangedInode } from '../../../src/disk-copy/index.ts';

const inode = (
  paths: string[],
  transid: number | undefined,
  more: Partial<ChangedInode> = {},
): ChangedInode => ({
  ino: 300,
  kind: 'file',
  created: false,
  size: 0,
  nbytes: 0,
  nlink: 1,
  nocow: false,
  ...(transid === undefined ? {} : { transid }),
  paths,
  newerEntry: false,
  inline: false,
  extents: [],
  ...more,
});

void describe("a target's own changes beside the last sync's writes", () => {
  const wrote = { through: 40, paths: ['log/app.log', 'data', 'data/a', 'x/linked-1', '.'] };

  void it('leaves out an inode the last sync wrote, changed no later than its commit', () => {
    const changes = [inode(['log/app.log'], 40), inode(['data/a'], 39), inode([''], 40, { kind: 'dir' })];
    assert.deepEqual(ownChanges(changes, wrote), []);
  });

  void it('keeps an inode changed after that commit, or one the sync did not write, or one of its names', () => {
    const later = inode(['log/app.log'], 41);
    const other = inode(['data/b'], 38);
    const oneName = inode(['x/linked-1', 'x/linked-2'], 40);
    assert.deepEqual(ownChanges([later, other, oneName], wrote), [later, other, oneName]);
  });

  void it('keeps everything when nothing was recorded, or the helper gave no transaction', () => {
    const changes = [inode(['log/app.log'], 40)];
    assert.deepEqual(ownChanges(changes, undefined), changes);
    assert.deepEqual(ownChanges([inode(['log/app.log'], undefined)], wrote).length, 1);
  });

  void it("with marks (the writes fsynced, their transaction shared): in it, only a file still holding its mark is the sync's", () => {
    const fsynced = {
      through: 40,
      paths: ['log/app.log', 'data', 'data/a'],
      marks: { 'log/app.log': 'm1', 'data/a': 'm2' },
    };
    const same = inode(['log/app.log'], 40, { mark: 'm1' });
    const before = inode(['data/a'], 39);
    assert.deepEqual(
      ownChanges([same, before], fsynced),
      [],
      'unchanged since the fsync, or before its transaction',
    );
    const rewritten = inode(['data/a'], 40, { mark: 'another' });
    const unmarked = inode(['log/app.log'], 40);
    const directory = inode(['data'], 40, { kind: 'dir' });
    assert.deepEqual(
      ownChanges([rewritten, unmarked, directory], fsynced),
      [rewritten, unmarked, directory],
      'written again in the shared transaction, or no mark to tell (a directory, a search without marks)',
    );
  });
});
