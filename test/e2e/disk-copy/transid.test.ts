/**
 * What a transid search finds in a real btrfs subvolume after a transaction, and what the sync plan
 * makes of it: each kind of change (an overwrite, a write through a hard link, a rename over another
 * name, a punched hole, a nocow overwrite, an extended attribute, a truncation, a new file, a removed
 * one) is told apart, buffered writes are found without an fsync, and the search gives up cleanly
 * past its limit and on a path that is not btrfs. Then a sync from those changes alone makes a copy
 * equal to its source (tree hash and rsync --checksum), round after round of every kind of change.
 * Last, a sync made durable by fsync with no commit (a switch's final sync) leaves the target whole
 * after a crash of the host right after it, where the same sync left to the next commit does not;
 * the marks of the files it fsynced tell a later write in the same transaction apart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec, isUnderstudyError } from '../../../src/core/index.ts';
import {
  TransidSearcher,
  anyXattrs,
  changesSince,
  ownChanges,
  planTransidSync,
  syncByTransid,
  type ChangedInode,
  type TransidSyncOutcome,
} from '../../../src/disk-copy/index.ts';
import { createPool, createSubvolume, type Pool } from './fixtures.ts';
import { assertSameTree } from './helpers.ts';

/** Punches a 64 KiB hole at 64 KiB into `file` (no new extent: its allocated size drops). */
const punchHole = (file: string): Promise<unknown> =>
  exec(['fallocate', '--punch-hole', '--offset', '65536', '--length', '65536', file]);

void describe('transid search (a btrfs pool on a loop device)', () => {
  let pool: Pool;
  let live: string;
  let since: number;
  const block = Buffer.alloc(256 << 10, 7);

  before(async () => {
    pool = await createPool(512, 'transid', { mountOptions: ['noatime'] });
    live = path.join(pool.path, 'live');
    await createSubvolume(live);
    await fs.mkdir(path.join(live, 'd'));
    for (const name of [
      'overwritten',
      'punched',
      'renamed-over',
      'moved',
      'xattr',
      'truncated',
      'linked',
      'removed',
    ])
      await fs.writeFile(path.join(live, 'd', name), block);
    await fs.writeFile(path.join(live, 'untouched'), block);
    await fs.writeFile(path.join(live, 'nocow'), '');
    await exec(['chattr', '+C', path.join(live, 'nocow')]);
    await fs.writeFile(path.join(live, 'nocow'), block);
    await fs.link(path.join(live, 'd', 'linked'), path.join(live, 'linked-too'));
    since = (await changesSince(live, 0)).transid;
  });
  after(async () => pool?.cleanup());

  const byPath = (inodes: readonly ChangedInode[], relative: string): ChangedInode | undefined =>
    inodes.find((i) => i.paths.includes(relative));

  void it('finds nothing when nothing changed, and names the committed transaction', async () => {
    const changes = await changesSince(live, since);
    assert.equal(changes.overflow, undefined);
    assert.ok(changes.transid >= since);
    assert.deepEqual(changes.overflow ? [] : changes.inodes, []);
  });

  void it('tells each kind of change apart, with no fsync, and plans the copy', async () => {
    const handle = async (relative: string, run: (h: fs.FileHandle) => Promise<unknown>): Promise<void> => {
      const h = await fs.open(path.join(live, relative), 'r+');
      try {
        await run(h);
      } finally {
        await h.close();
      }
    };
    await handle('d/overwritten', (h) => h.write(Buffer.alloc(4096, 1), 0, 4096, 131072));
    await punchHole(path.join(live, 'd/punched'));
    await handle('nocow', (h) => h.write(Buffer.alloc(4096, 1), 0, 4096, 131072));
    await fs.rename(path.join(live, 'd/moved'), path.join(live, 'd/renamed-over'));
    await exec(['setfattr', '-n', 'user.probe', '-v', '1', path.join(live, 'd/xattr')]);
    await fs.truncate(path.join(live, 'd/truncated'), 100_000);
    await handle('linked-too', (h) => h.write(Buffer.alloc(4096, 1), 0, 4096, 0));
    await fs.writeFile(path.join(live, 'd/new'), 'new\n');
    await fs.rm(path.join(live, 'd/removed'));

    const changes = await changesSince(live, since);
    assert.equal(changes.overflow, undefined);
    const inodes = changes.overflow ? [] : changes.inodes;
    assert.ok(changes.transid > since);
    assert.equal(byPath(inodes, 'untouched'), undefined, 'an untouched file is not listed');
    assert.deepEqual(byPath(inodes, 'd/overwritten')?.extents, [[131072, 4096]]);
    const punched = byPath(inodes, 'd/punched');
    assert.deepEqual(punched?.extents, [], 'a punched hole gives no new extent');
    assert.equal(punched?.nbytes, block.length - 65536, 'but a smaller allocated size');
    assert.equal(byPath(inodes, 'nocow')?.nocow, true);
    assert.equal(byPath(inodes, 'd/renamed-over')?.newerEntry, true);
    assert.equal(byPath(inodes, 'd/xattr')?.extents.length, 0);
    assert.equal(byPath(inodes, 'd/truncated')?.size, 100_000);
    assert.deepEqual(byPath(inodes, 'd/linked')?.paths.sort(), ['d/linked', 'linked-too']);
    assert.equal(byPath(inodes, 'd/new')?.created, true);
    assert.equal(byPath(inodes, 'd/removed'), undefined);

    const plan = planTransidSync(inodes);
    assert.deepEqual(plan.directories, ['d']);
    assert.deepEqual(plan.whole, ['d/linked', 'd/new', 'd/renamed-over', 'linked-too', 'nocow']);
    assert.deepEqual(
      plan.patches.map((p) => [p.relative, p.ranges]),
      [
        ['d/overwritten', [[131072, 4096]]],
        ['d/punched', []],
        ['d/truncated', []],
        ['d/xattr', []],
      ],
    );
    since = changes.transid;
  });

  void it('gives up past its limit, and fails clearly on a path that is not btrfs', async () => {
    for (let i = 0; i < 5; i++) await fs.writeFile(path.join(live, `many-${i}`), String(i));
    const changes = await changesSince(live, since, { limit: 3 });
    assert.equal(changes.overflow, true);
    await assert.rejects(
      () => changesSince(path.dirname(pool.path), since),
      (error) =>
        isUnderstudyError(error) && error.code === 'DISK_SYNC_FAILED' && /python3/.test(error.hint ?? ''),
    );
  });

  void it('syncs a copy from the changes alone, round after round, until the trees are equal', async () => {
    const source = path.join(pool.path, 'source');
    const target = path.join(pool.path, 'target');
    await createSubvolume(source);
    await createSubvolume(target);
    const write = async (relative: string, data: string | Buffer): Promise<void> => {
      await fs.mkdir(path.dirname(path.join(source, relative)), { recursive: true });
      await fs.writeFile(path.join(source, relative), data);
    };
    for (let i = 0; i < 50; i++) await write(`dir${i % 5}/file${i}`, `file ${i}\n`.repeat(i * 50));
    await write('log', block);
    await write('sparse', block);
    await fs.symlink('dir0/file0', path.join(source, 'link'));
    await fs.link(path.join(source, 'dir1/file1'), path.join(source, 'dir2/file1-too'));
    await exec(['cp', '-a', '--reflink=never', `${source}/.`, `${target}/`]);
    let from = (await changesSince(source, 0)).transid;
    await assertSameTree(source, target);

    const rounds: (() => Promise<void>)[] = [
      async () => {
        // Appends, overwrites in place, a new file, a removed file, a chmod, a symlink retargeted.
        await fs.appendFile(path.join(source, 'log'), 'appended\n');
        const h = await fs.open(path.join(source, 'dir3/file8'), 'r+');
        await h.write('XX', 10);
        await h.close();
        await write('dir4/new', 'new\n');
        await fs.rm(path.join(source, 'dir0/file5'));
        await fs.chmod(path.join(source, 'dir1/file6'), 0o600);
        await fs.rm(path.join(source, 'link'));
        await fs.symlink('dir1/file1', path.join(source, 'link'));
      },
      async () => {
        // A directory renamed, one removed with what it holds, one created with files, a file renamed
        // over another, a hole punched, a file truncated and grown again, a hard link written.
        await fs.rename(path.join(source, 'dir2'), path.join(source, 'dir2-moved'));
        await fs.rm(path.join(source, 'dir3'), { recursive: true });
        await write('fresh/a/b', 'deep\n');
        await fs.rename(path.join(source, 'dir4/file9'), path.join(source, 'dir4/file14'));
        await punchHole(path.join(source, 'sparse'));
        await fs.truncate(path.join(source, 'dir1/file11'), 10);
        await fs.truncate(path.join(source, 'dir1/file11'), 5000);
        await fs.appendFile(path.join(source, 'dir1/file1'), 'through one name\n');
      },
      async () => {
        // A file replaced by a directory, a directory by a file.
        await fs.rm(path.join(source, 'dir0/file10'));
        await write('dir0/file10/inside', 'was a file\n');
        await fs.rm(path.join(source, 'fresh'), { recursive: true });
        await write('fresh', 'was a directory\n');
      },
    ];
    // The first round starts a helper for its search, the others ask one kept running.
    const searcher = TransidSearcher.start();
    after(() => searcher.close());
    for (const [n, change] of rounds.entries()) {
      await change();
      const outcome = await syncByTransid({ source, target, since: from, ...(n > 0 ? { searcher } : {}) });
      assert.equal(outcome.overflow, undefined, `round ${n + 1}: ${outcome.overflow ? outcome.reason : ''}`);
      if (outcome.overflow) return;
      assert.ok(outcome.transid > from);
      from = outcome.transid;
      await assertSameTree(source, target);
    }

    // Nothing changed: nothing written.
    const idle = await syncByTransid({ source, target, since: from });
    assert.equal(idle.overflow ? -1 : idle.whole + idle.patched, 0);

    // An extended attribute is not what this sync copies: it says so and writes nothing.
    await exec(['setfattr', '-n', 'user.kept', '-v', '1', path.join(source, 'log')]);
    const xattr = await syncByTransid({ source, target, since: idle.overflow ? from : idle.transid });
    assert.equal(xattr.overflow, true);
  });

  void it('passes over a source being written: the check tells later changes from errors, and a last pass ends equal', async () => {
    const source = path.join(pool.path, 'written');
    const target = path.join(pool.path, 'written-copy');
    await createSubvolume(source);
    await createSubvolume(target);
    await fs.mkdir(path.join(source, 'busy'));
    for (let i = 0; i < 20; i++) await fs.writeFile(path.join(source, 'busy', `file${i}`), block);
    await fs.writeFile(path.join(source, 'log'), '');
    await exec(['cp', '-a', '--reflink=never', `${source}/.`, `${target}/`]);
    let from = (await changesSince(source, 0)).transid;

    // The service: appends, files rewritten whole (truncated, then written), files created, some
    // removed and renamed, without pause until the passes are done.
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await fs.appendFile(path.join(source, 'log'), `record ${i}\n`);
        await fs.writeFile(path.join(source, 'busy', `file${i % 20}`), Buffer.alloc(64 << 10, i % 251));
        await fs.writeFile(path.join(source, 'busy', `new${i}`), `new ${i}\n`);
        if (i % 7 === 6) await fs.rm(path.join(source, 'busy', `new${i - 3}`), { force: true });
        if (i % 11 === 10)
          await fs.rename(path.join(source, 'busy', `new${i}`), path.join(source, `top${i}`));
        writes += 1;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    const searcher = TransidSearcher.start();
    after(() => searcher.close());
    let passes = 0;
    let changedDuring = 0;
    const failures: string[] = [];
    try {
      for (let attempt = 0; attempt < 12 && passes < 4; attempt++) {
        try {
          const outcome = await syncByTransid({ source, target, since: from, searcher, live: true });
          assert.equal(outcome.overflow, undefined);
          if (outcome.overflow) return;
          from = outcome.transid;
          passes += 1;
          changedDuring += outcome.changedDuring ?? 0;
        } catch (error) {
          // A path that vanished under the copy or the search fails the pass, which runs again from
          // the same place; a difference the check cannot explain fails the test.
          if (!isUnderstudyError(error, 'DISK_SYNC_FAILED')) throw error;
          failures.push(error.message);
        }
      }
    } finally {
      writing = false;
      await writer;
    }
    assert.ok(
      passes >= 2,
      `at least two passes over the written source finished (${failures.length} failed: ${failures[0]})`,
    );
    assert.ok(writes > 20, `the writer kept writing during the passes (${writes} rounds)`);
    // With the service quiet, one more pass from the last one's transaction makes the copy equal.
    const last = await syncByTransid({ source, target, since: from, searcher });
    assert.equal(last.overflow, undefined);
    await assertSameTree(source, target);
    // For the record in the test's output: how much the check had to explain.
    console.log(
      `live passes: ${passes} finished, ${failures.length} restarted, ${changedDuring} paths changed under them, ${writes} writer rounds`,
    );
  });

  void it('answers through a helper kept running as through its own process, and survives a bad request', async () => {
    await fs.writeFile(path.join(live, 'kept-running'), 'x');
    const searcher = TransidSearcher.start();
    try {
      const [own, kept] = await Promise.all([changesSince(live, since), searcher.search(live, since)]);
      assert.ok(!own.overflow && !kept.overflow);
      if (own.overflow || kept.overflow) return;
      const named = (c: { inodes: ChangedInode[] }): string[] => c.inodes.flatMap((i) => i.paths).sort();
      assert.ok(named(own).includes('kept-running'));
      assert.deepEqual(named(kept), named(own));
      await assert.rejects(
        () => searcher.search(path.join(live, 'absent'), since),
        (error) =>
          isUnderstudyError(error) && error.code === 'DISK_SYNC_FAILED' && /absent/.test(error.message),
      );
      const again = await searcher.search(live, since);
      assert.equal(again.overflow, undefined);
      // Extended attributes, asked of the helper as of getfattr: a user attribute, a trusted one
      // (which only root sees), none.
      const plain = path.join(live, 'kept-running');
      const tagged = path.join(live, 'with-xattr');
      const trusted = path.join(live, 'with-trusted');
      await fs.writeFile(tagged, 'x');
      await fs.writeFile(trusted, 'x');
      await exec(['setfattr', '-n', 'user.tag', '-v', '1', tagged]);
      await exec(['setfattr', '-n', 'trusted.tag', '-v', '1', trusted]);
      for (const [paths, expected] of [
        [[plain], false],
        [[plain, tagged], true],
        [[trusted], true],
        [[path.join(live, 'gone')], false],
      ] as const) {
        assert.equal(await searcher.anyXattrs(paths), expected, paths.join(' '));
        assert.equal(await anyXattrs(paths), expected, `getfattr: ${paths.join(' ')}`);
      }
      await fs.rm(tagged);
      await fs.rm(trusted);
    } finally {
      await searcher.close();
    }
  });

  void it('answers every request written before its stdin closes, then ends with status 0', async () => {
    // The helper leaves at once when its stdin closes (no orderly interpreter exit): what it was
    // asked before must all have come out.
    const helper = path.resolve('src/disk-copy/btrfs/transid-search.py');
    const plain = path.join(live, 'asked-before-the-end');
    await fs.writeFile(plain, 'x');
    const requests = [
      { ping: true },
      { xattrs: [plain] },
      { subvolume: live, since, limit: 100_000 },
      { subvolume: path.join(live, 'absent'), since, limit: 10 },
    ];
    const { stdout } = await exec(['python3', helper, '--serve'], {
      input: requests.map((r) => `${JSON.stringify(r)}\n`).join(''),
      timeoutMs: 30_000,
    });
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const answers = lines.filter((l) => 'end' in l).length;
    assert.equal(answers, requests.length, 'one answer ended by {"end": true} a request');
    assert.deepEqual(lines[0], { pong: true });
    assert.deepEqual(lines[2], { withXattrs: [] });
    assert.ok(
      lines.some((l) => typeof l.error === 'string' && l.error.includes('absent')),
      'the last request, on a missing subvolume, answered with its error',
    );
    assert.deepEqual(lines.at(-1), { end: true });
  });

  void it('marks the files it fsyncs, so that a write sharing their transaction is told apart from the sync', async (t) => {
    const searcher = TransidSearcher.start();
    try {
      const m = path.join(live, 'marked');
      await fs.mkdir(m);
      const base = (await searcher.search(live, 0, { limit: 1_000_000 })).transid;
      const names = ['kept', 'appended', 'overwritten', 'small', 'tagged', 'chmodded'];
      for (const name of names) await fs.writeFile(path.join(m, name), name === 'small' ? 'tiny' : block);
      const paths = [...names.map((n) => `marked/${n}`), 'marked'];
      const fsynced = await searcher.fsyncPaths(live, paths, base);
      assert.ok(fsynced, 'fsynced');
      assert.ok(fsynced.through > base, `${fsynced.through} after ${base}`);
      assert.deepEqual(
        Object.keys(fsynced.marks).sort(),
        names.map((n) => `marked/${n}`).sort(),
        'a mark a file',
      );
      // Right away, with no commit between (the same transaction, unless the pool's timer commits):
      // each kind of later write, and one file left as the sync left it.
      await fs.appendFile(path.join(m, 'appended'), 'one more record\n');
      const h = await fs.open(path.join(m, 'overwritten'), 'r+');
      await h.write(Buffer.alloc(4096, 9), 0, 4096, 8192);
      await h.close();
      await fs.writeFile(path.join(m, 'small'), 'tint');
      await exec(['setfattr', '-n', 'user.later', '-v', '1', path.join(m, 'tagged')]);
      await fs.chmod(path.join(m, 'chmodded'), 0o600);
      const changes = await searcher.search(live, base, { markAt: fsynced.through });
      assert.ok(!changes.overflow);
      if (changes.overflow) return;
      const kept = byPath(changes.inodes, 'marked/kept');
      assert.ok(kept, "the sync's write is a change after the base");
      if (kept.transid === fsynced.through)
        assert.equal(kept.mark, fsynced.marks['marked/kept'], 'unchanged: its mark');
      const shared = changes.inodes.filter(
        (i) => i.transid === fsynced.through && i.mark !== undefined,
      ).length;
      t.diagnostic(
        `${shared} of ${names.length} files marked in the fsync's transaction, ${fsynced.through}`,
      );
      const own = ownChanges(changes.inodes, { through: fsynced.through, paths, marks: fsynced.marks });
      assert.deepEqual(
        own.flatMap((i) => i.paths).sort(),
        ['marked', ...names.filter((n) => n !== 'kept').map((n) => `marked/${n}`)].sort(),
        "every file written after the fsync is the target's own (and the directory, which has no mark)",
      );
      await assert.rejects(
        () => searcher.fsyncPaths(path.join(live, 'absent'), ['x'], base),
        (error) => isUnderstudyError(error, 'DISK_SYNC_FAILED'),
      );
    } finally {
      await searcher.close();
    }
  });

  void it('makes read-only snapshots through the helper, and fails clearly on a bad source or target', async () => {
    const searcher = TransidSearcher.start();
    await searcher.ready(); // python3 is up: the first request does not wait for it
    const holder = path.join(pool.path, 'snaps');
    await fs.mkdir(holder);
    try {
      await fs.writeFile(path.join(live, 'before-the-snapshot'), 'buffered, not fsynced');
      const target = path.join(holder, 'cut');
      await searcher.snapshot(live, target);
      const ro = await exec(['btrfs', 'property', 'get', '-ts', target, 'ro']);
      assert.equal(ro.stdout.trim(), 'ro=true');
      assert.equal(
        await fs.readFile(path.join(target, 'before-the-snapshot'), 'utf8'),
        'buffered, not fsynced',
      );
      await assertSameTree(live, target);
      await assert.rejects(
        () => searcher.snapshot(path.join(live, 'absent'), path.join(holder, 'other')),
        (error) =>
          isUnderstudyError(error) && error.code === 'DISK_SYNC_FAILED' && /absent/.test(error.message),
      );
      await assert.rejects(
        () => searcher.snapshot(live, target),
        (error) =>
          isUnderstudyError(error) && error.code === 'DISK_SYNC_FAILED' && /File exists/.test(error.message),
      );
      // The helper still answers after the failures.
      assert.equal((await searcher.search(live, since)).overflow, undefined);
      assert.equal(searcher.closed, false);
      await searcher.close();
      assert.equal(
        searcher.closed,
        true,
        'a closed helper says so (a prepared final sync then starts another)',
      );
      await assert.rejects(
        () => searcher.snapshot(live, path.join(holder, 'late')),
        (error) => isUnderstudyError(error) && /closed/.test(error.message),
      );
    } finally {
      await searcher.close();
      await exec(['btrfs', 'subvolume', 'delete', path.join(holder, 'cut')]).catch(() => undefined);
    }
  });
});

/**
 * What the target pool holds after a crash of the host right after the sync, with no commit of it
 * since: a copy of its image taken then (the pool mounted `commit=300`, so that no periodic commit
 * comes between), mounted in its place once the pool is unmounted (mounting replays its log tree).
 */
async function afterCrash(
  pool: Pool,
  subvolume: string,
  check: (copied: string) => Promise<void>,
): Promise<void> {
  const dir = path.dirname(pool.path);
  const image = path.join(dir, 'crash.img');
  const mountPoint = path.join(dir, 'crash');
  await exec(['cp', '--sparse=always', path.join(dir, 'pool.img'), image]);
  await exec(['umount', pool.path]);
  await exec(['btrfs', 'device', 'scan', '--forget', pool.device]);
  await fs.mkdir(mountPoint);
  const device = (await exec(['losetup', '--find', '--show', image])).stdout.trim();
  try {
    await exec(['mount', device, mountPoint]);
    try {
      await check(path.join(mountPoint, path.relative(pool.path, subvolume)));
    } finally {
      await exec(['umount', mountPoint]);
    }
  } finally {
    await exec(['btrfs', 'device', 'scan', '--forget', device], { okCodes: [0, 1] });
    await exec(['losetup', '-d', device]);
  }
}

void describe('a sync made durable by fsync, no commit started (the final sync inside a hold)', () => {
  /**
   * Two pools, a first sync (committed), then the source's last changes synced with `durable`; then
   * `check` is given the outcome, the source and the target as a crash right after would leave it.
   */
  const scenario = async (
    durable: 'files' | false,
    lastChanges: (source: string) => Promise<void>,
    check: (o: { outcome: TransidSyncOutcome; source: string; copied: string }) => Promise<void>,
  ): Promise<void> => {
    const from = await createPool(256, 'fsync-a', { mountOptions: ['noatime'] });
    const to = await createPool(256, 'fsync-b', { mountOptions: ['noatime', 'commit=300'] });
    const searcher = TransidSearcher.start();
    try {
      const source = path.join(from.path, 'app');
      const target = path.join(to.path, 'app');
      await createSubvolume(source);
      await createSubvolume(target);
      await fs.mkdir(path.join(source, 'd'));
      await fs.writeFile(path.join(source, 'log'), Buffer.alloc(1 << 20, 1));
      for (const name of ['kept', 'rewritten', 'removed'])
        await fs.writeFile(path.join(source, 'd', name), `${name}\n`);
      const first = await syncByTransid({ source, target, since: 0, searcher });
      assert.equal(first.overflow, undefined);
      await assertSameTree(source, target);
      await lastChanges(source);
      const outcome = await syncByTransid({ source, target, since: first.transid, searcher, durable });
      assert.equal(outcome.overflow, undefined);
      await assertSameTree(source, target);
      await afterCrash(to, target, (copied) => check({ outcome, source, copied }));
    } finally {
      await searcher.close();
      await to.cleanup();
      await from.cleanup();
    }
  };
  const cut = async (source: string): Promise<void> => {
    await fs.appendFile(path.join(source, 'log'), Buffer.alloc(8192, 2));
    await fs.writeFile(path.join(source, 'd', 'rewritten'), 'rewritten at the cut\n');
    await fs.writeFile(path.join(source, 'd', 'created'), 'created at the cut\n');
    await fs.rm(path.join(source, 'd', 'removed'));
  };

  void it('every path it wrote survives a crash right after it (the log tree), with no commit waited for', async () => {
    await scenario('files', cut, async ({ outcome, source, copied }) => {
      assert.ok(!outcome.overflow);
      assert.equal(typeof outcome.fsynced?.through, 'number', 'made durable by fsync');
      assert.equal(outcome.targetTransid, undefined, 'no commit waited for');
      await assertSameTree(source, copied);
    });
  });

  void it('the control: without it the same crash loses the last changes', async () => {
    await scenario(false, cut, async ({ copied }) => {
      await assert.rejects(() => fs.stat(path.join(copied, 'd', 'created')), /ENOENT/);
      assert.equal(await fs.readFile(path.join(copied, 'd', 'rewritten'), 'utf8'), 'rewritten\n');
      assert.equal((await fs.stat(path.join(copied, 'log'))).size, 1 << 20);
    });
  });

  void it('a written path it cannot fsync (a symlink) makes it commit instead', async () => {
    const withLink = async (source: string): Promise<void> => {
      await cut(source);
      await fs.symlink('rewritten', path.join(source, 'd', 'link'));
    };
    await scenario('files', withLink, async ({ outcome, source, copied }) => {
      assert.ok(!outcome.overflow);
      assert.equal(outcome.fsynced, undefined);
      assert.equal(typeof outcome.targetTransid, 'number', 'committed');
      await assertSameTree(source, copied);
    });
  });
});
