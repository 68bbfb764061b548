import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unexplainedDifferences, type ChangedInode } from '../../../src/disk-copy/index.ts';

const inode = (
  kind: ChangedInode['kind'],
  paths: string[],
  more: Partial<ChangedInode> = {},
): ChangedInode => ({
  ino: 300,
  kind,
  created: false,
  size: 0,
  nbytes: 0,
  nlink: 1,
  nocow: false,
  paths,
  newerEntry: false,
  inline: false,
  extents: [],
  ...more,
});

void describe('the check of a pass over a live source', () => {
  void it('accepts a path the source changed again, or one under a directory created or renamed since', () => {
    const later = [
      inode('file', ['d/written']),
      inode('dir', ['moved'], { newerEntry: true }),
      inode('dir', ['fresh'], { created: true }),
    ];
    assert.deepEqual(
      unexplainedDifferences(['d/written', 'moved/a/b', 'fresh/x', 'moved'], later, new Set()),
      [],
    );
  });

  void it('accepts a path gone from the source when the nearest directory it still has changed since', () => {
    const later = [inode('dir', ['d']), inode('dir', [''])];
    // d/gone was removed; e (and all it held) was removed from the top.
    assert.deepEqual(
      unexplainedDifferences(['d/gone', 'e/f/g'], later, new Set(['d/gone', 'e/f/g', 'e/f', 'e'])),
      [],
    );
  });

  void it('refuses every other difference: the next pass would not look at it again', () => {
    const later = [inode('dir', ['d']), inode('file', ['d/other'])];
    assert.deepEqual(
      unexplainedDifferences(
        // Still in the source and not changed since, though its directory changed; gone, but its
        // directory did not change since; and nothing changed at all.
        ['d/kept', 'x/gone', 'y'],
        later,
        new Set(['x/gone']),
      ),
      ['d/kept', 'x/gone', 'y'],
    );
    assert.deepEqual(unexplainedDifferences(['a'], [], new Set()), ['a']);
  });
});
