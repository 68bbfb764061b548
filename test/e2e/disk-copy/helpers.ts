/** Assertions shared by the disk-copy end-to-end tests. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../../../src/core/index.ts';
import { hashTree, type Freezer } from '../../../src/disk-copy/index.ts';

/** No staging directory of any copy job is left in these directories. */
export async function assertNoLeftovers(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    const left = (await fs.readdir(dir)).filter((name) => name.startsWith('.understudy-copy-'));
    assert.deepEqual(left, [], `copy staging left in ${dir}`);
  }
}

export async function exists(target: string): Promise<boolean> {
  return fs.lstat(target).then(
    () => true,
    () => false,
  );
}

/**
 * A freezer that, once the writer is frozen, takes the test's own read-only snapshot of the source:
 * the state at the cut, seen independently of the copy. Counts freezes and thaws.
 */
export function recordingFreezer(
  inner: Freezer,
  source: string,
  snapshotDir: string,
): Freezer & { snapshots: string[]; freezes: number; thaws: number } {
  const state = {
    snapshots: [] as string[],
    freezes: 0,
    thaws: 0,
    async freeze() {
      await inner.freeze();
      state.freezes += 1;
      const target = path.join(snapshotDir, `test-cut-${randomBytes(4).toString('hex')}`);
      await exec(['btrfs', 'subvolume', 'snapshot', '-r', source, target]);
      state.snapshots.push(target);
    },
    async thaw() {
      state.thaws += 1;
      await inner.thaw();
    },
  };
  return state;
}

export async function deleteSubvolumes(paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    if (await exists(p)) await exec(['btrfs', 'subvolume', 'delete', p]);
  }
}

/**
 * The copy equals the tree at the cut: same tree hash (content, sizes, modes, owners, links, xattrs)
 * and, checked independently, rsync with checksums finds nothing to transfer (times included).
 */
export async function assertSameTree(expected: string, actual: string): Promise<string> {
  const [a, b] = await Promise.all([hashTree(expected), hashTree(actual)]);
  assert.equal(b.digest, a.digest, `tree hash of ${actual} differs from ${expected}`);
  const rsync = await exec(
    ['rsync', '-aHAXn', '--checksum', '--delete', '--itemize-changes', `${expected}/`, `${actual}/`],
    { timeoutMs: 300_000 },
  );
  assert.equal(rsync.stdout.trim(), '', `rsync finds differences between ${expected} and ${actual}`);
  return a.digest;
}
