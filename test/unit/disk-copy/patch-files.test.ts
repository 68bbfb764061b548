/**
 * The in-place patch of a file that only changed in its bytes (the final sync's copy of a log that
 * grew): only the changed ranges are written, the result equals the source, and the check names a
 * file whose patched ranges differ.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { differingPatches, mergeRanges, patchFiles } from '../../../src/disk-copy/index.ts';

void describe('patch files in place', () => {
  void it('merges ranges that touch or overlap and clips them to the size', () => {
    assert.deepEqual(
      mergeRanges(
        [
          [100, 50],
          [0, 10],
          [10, 5],
          [140, 100],
          [900, 10],
        ],
        200,
      ),
      [
        [0, 15],
        [100, 200],
      ],
    );
  });

  void it('writes only the changed ranges, in place, and sets size, mode and times from the source', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'us-patch-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const source = path.join(dir, 'source');
    const target = path.join(dir, 'target');
    await fs.mkdir(source);
    await fs.mkdir(target);
    const base = Buffer.alloc(64 * 1024, 'a');
    await fs.writeFile(path.join(target, 'log'), base);
    const inode = (await fs.stat(path.join(target, 'log'))).ino;
    // The source: one page rewritten in the middle, 100 bytes appended.
    const changed = Buffer.concat([base, Buffer.alloc(100, 'z')]);
    changed.fill('m', 8192, 12288);
    await fs.writeFile(path.join(source, 'log'), changed);
    await fs.chmod(path.join(source, 'log'), 0o640);
    await fs.utimes(path.join(source, 'log'), 1_700_000_000, 1_700_000_000);
    const patches = [
      {
        relative: 'log',
        edit: {
          ranges: [
            [8192, 4096],
            [65536, 100],
          ] as [number, number][],
          truncatedTo: [],
        },
      },
    ];
    const bytes = await patchFiles({ source, target, patches });
    assert.equal(bytes, 4196);
    assert.deepEqual(await fs.readFile(path.join(target, 'log')), changed);
    const stat = await fs.stat(path.join(target, 'log'));
    assert.equal(stat.ino, inode, 'the same file, patched in place');
    assert.equal(stat.mode & 0o7777, 0o640);
    assert.equal(stat.mtimeMs, 1_700_000_000_000);
    assert.deepEqual(await differingPatches({ source, target, patches }), []);
    // A patched range that differs is named.
    const handle = await fs.open(path.join(target, 'log'), 'r+');
    await handle.write(Buffer.from('X'), 0, 1, 65540);
    await handle.close();
    assert.deepEqual(await differingPatches({ source, target, patches }), ['log']);
  });
});
