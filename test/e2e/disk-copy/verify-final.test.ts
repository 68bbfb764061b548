/**
 * The whole-tree check after a final sync (DiskStore.verifyFinalSync), against real btrfs pools on
 * loop devices: after an honest final sync, with the standby serving (writing) again, the check
 * passes; a standby file that differs from the source's though no change of it was recorded (its
 * sync base replaced by one that holds the corruption: what the incremental sync cannot see, and
 * what the final sync's own check of the changed paths passes) is found and named; the reads are
 * paced; nothing is left behind, even by a check whose process is killed (the recovery removes it).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exec, spawnProcess } from '../../../src/core/index.ts';
import {
  BtrfsDiskStore,
  copyLive,
  diskCopySchema,
  getSyncBase,
  type DiskRef,
} from '../../../src/disk-copy/index.ts';
import type { LcSpec } from '../../../src/drivers/index.ts';
import { openStore, type Db } from '../../../src/store/index.ts';
import { createPool, createSubvolume, fillTree, tag, type Pool } from './fixtures.ts';
import { assertSameTree } from './helpers.ts';

const noFreeze = { async freeze() {}, async thaw() {} };

function lcSpec(name: string, pool: string): LcSpec {
  return {
    name,
    image: 'none',
    cpus: '0',
    cpuSharePercent: 100,
    memoryMb: 64,
    disks: [{ name: 'app', pool, sizeMb: 512, mountPath: '/srv' }],
    nics: [],
  };
}

async function write(root: string, relative: string, data: string): Promise<void> {
  await fs.mkdir(path.dirname(path.join(root, relative)), { recursive: true });
  await fs.writeFile(path.join(root, relative), data);
}

void describe('the whole-tree check after a final sync (btrfs pools on loop devices)', () => {
  let poolA: Pool;
  let poolB: Pool;
  let db: Db;
  let dbDir: string;
  let store: BtrfsDiskStore;
  const pools = new Map<string, Pool>();
  const run = tag();
  const lc1 = lcSpec(`v1-${run}`, 'pa');
  const lc2 = lcSpec(`v2-${run}`, 'pb');
  const app1: DiskRef = { lc: lc1, disk: 'app' };
  const app2: DiskRef = { lc: lc2, disk: 'app' };
  const log = 'log/journal.log';

  /**
   * Moves the standby's transid base past what it changed so far, as if no sync should look at it
   * (its own changes since the base no longer name them).
   */
  const forgetStandbyChanges = async (): Promise<void> => {
    const b = store.mountpoint(app2);
    await exec(['sync', '-f', b]);
    const generation = Number(
      /^\s*Generation:\s*(\d+)/m.exec((await exec(['btrfs', 'subvolume', 'show', b])).stdout)?.[1],
    );
    const base = getSyncBase(db, `${lc1.name}/app`, `${lc2.name}/app`);
    const standby = base?.transids?.[`${lc2.name}/app`];
    assert.ok(base && standby && generation >= standby.transid, 'the pair is on transid bases');
    db.prepare('UPDATE sync_bases SET transids = ? WHERE pair = ?').run(
      JSON.stringify({ ...base.transids, [`${lc2.name}/app`]: { uuid: standby.uuid, transid: generation } }),
      base.pair,
    );
  };

  /** A final sync as a stateful switch makes it: LC2's side prepared, LC1 writes its last, the sync. */
  const finalSync = async (lastWrite: () => Promise<void>): Promise<void> => {
    await store.prepareFinalSync(app1, app2);
    await lastWrite();
    await store.sync(app1, app2, { final: true });
  };

  before(async () => {
    // Mounted as the host's pools are (src/host/pool.ts): a read does not change an inode.
    poolA = await createPool(1024, 'va', { mountOptions: ['noatime'] });
    poolB = await createPool(1024, 'vb', { mountOptions: ['noatime'] });
    pools.set('pa', poolA).set('pb', poolB);
    dbDir = await fs.mkdtemp(path.join(os.tmpdir(), `us-verify-db-${tag()}-`));
    db = openStore(path.join(dbDir, 'store.db'), [diskCopySchema]);
    store = new BtrfsDiskStore({
      db,
      poolPath: (pool) => pools.get(pool)?.path ?? '/nonexistent',
      poolDevice: (pool) => pools.get(pool)?.device ?? '/dev/null',
    });
    const source = store.mountpoint(app1);
    await fs.mkdir(path.dirname(source), { recursive: true });
    await fs.mkdir(path.dirname(store.mountpoint(app2)), { recursive: true });
    await createSubvolume(source);
    await fillTree(source, { smallFiles: 300 });
    await write(source, log, `${'r'.repeat(99)}\n`.repeat(20_000)); // 2 MB
    await copyLive(store, { from: app1, to: app2, jobId: `verify-${run}`, freezer: noFreeze, verify: true });
  });
  after(async () => {
    db?.close();
    await poolA?.cleanup();
    await poolB?.cleanup();
    if (dbDir) await fs.rm(dbDir, { recursive: true, force: true });
  });

  void it('an honest final sync passes, with the standby writing again before the check', async () => {
    const a = store.mountpoint(app1);
    const b = store.mountpoint(app2);
    await finalSync(async () => {
      await fs.appendFile(path.join(a, log), 'the last acknowledged record\n');
      await write(a, 'data/new-key', 'written just before the cut');
      await write(a, 'etc/d1/created-at-cut', 'created just before the cut');
      await fs.rm(path.join(a, 'etc/d2/f12.conf'));
    });
    // LC2 serves: it writes (these differ from LC1's frozen tree and must not count).
    await fs.appendFile(path.join(b, log), 'written on the standby after the release\n');
    await write(b, 'data/standby-key', 'the standby wrote this');
    await fs.rm(path.join(b, 'etc/d3/f13.conf'));
    // A file the final sync created, removed by the standby since: no trace in its changes.
    await fs.rm(path.join(b, 'etc/d1/created-at-cut'));
    const check = await store.verifyFinalSync(app1, app2);
    assert.equal(check.result, 'ok', JSON.stringify(check));
    assert.deepEqual(check.paths, []);
    assert.ok(check.entries > 300, `${check.entries} entries compared`);
    assert.ok(check.excluded >= 4, `${check.excluded} entries the standby changed since the cut left out`);
    assert.ok(check.bytes > 4_000_000, `${check.bytes} bytes read: both whole trees`);
    for (const disk of [a, b])
      assert.deepEqual(await fs.readdir(path.join(path.dirname(disk), '.understudy-verify')), []);
  });

  void it('the manager killed during the check: the recovery removes its snapshots, and the check runs again', async () => {
    const a = store.mountpoint(app1);
    const b = store.mountpoint(app2);
    await finalSync(() => fs.appendFile(path.join(a, log), 'before a check that is killed\n'));
    const child = spawnProcess(
      [
        process.execPath,
        '--import',
        'tsx',
        path.join(path.dirname(fileURLToPath(import.meta.url)), 'verify-child.ts'),
        JSON.stringify({
          db: path.join(dbDir, 'store.db'),
          pools: { pa: poolA.path, pb: poolB.path },
          from: lc1,
          to: lc2,
          // About 4 MB to read over both trees: a minute or so at this pace.
          bytesPerSecond: 64 * 1024,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const pinned = async (disk: string): Promise<string[]> =>
      fs.readdir(path.join(path.dirname(disk), '.understudy-verify')).catch(() => []);
    // Killed once it has pinned the bases and its snapshot of the standby (three snapshots).
    for (let i = 0; i < 600 && (await pinned(a)).length + (await pinned(b)).length < 3; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    child.child.kill('SIGKILL');
    await child.done.catch(() => undefined);
    assert.equal(
      (await pinned(a)).length + (await pinned(b)).length,
      3,
      'the killed check left its snapshots',
    );
    await store.recoverCopies(db);
    assert.deepEqual(await pinned(a), [], 'removed by the recovery');
    assert.deepEqual(await pinned(b), []);
    const check = await store.verifyFinalSync(app1, app2);
    assert.equal(check.result, 'ok', JSON.stringify(check));
  });

  void it("hard-link groups with links inside the final sync's paths and others outside are judged by the links outside", async () => {
    const a = store.mountpoint(app1);
    const b = store.mountpoint(app2);
    await store.sync(app2, app1);
    await store.sync(app1, app2);
    await store.settled();
    // A group the two disks share (var/hardlink.conf = etc/d2/f2.conf, from the fixture), and one
    // made now on both by a sync.
    await fs.link(path.join(a, 'etc/d7/f17.conf'), path.join(a, 'var/second-link.conf'));
    await store.sync(app1, app2);
    await store.settled();
    await finalSync(async () => {
      // Just before the cut LC1 links a new path to a file nobody changed, and unlinks one member of
      // each shared group: the final sync writes the new link and the removals (its paths); the
      // other members, outside them, keep their content and must not count as differing.
      await fs.link(path.join(a, 'etc/d4/f14.conf'), path.join(a, 'data/new-link.conf'));
      await fs.rm(path.join(a, 'var/hardlink.conf'));
      await fs.rm(path.join(a, 'etc/d7/f17.conf'));
    });
    await assertSameTree(a, b);
    const check = await store.verifyFinalSync(app1, app2);
    assert.equal(check.result, 'ok', JSON.stringify(check));

    // A group split on the standby where no sync looks (its transid base moved past the split), while
    // the next final sync writes a link into another group: the split is still named.
    await store.sync(app2, app1);
    await store.sync(app1, app2);
    await store.settled();
    const split = 'data/new-link.conf';
    const content = await fs.readFile(path.join(b, split));
    await fs.rm(path.join(b, split));
    await fs.writeFile(path.join(b, split), content);
    await forgetStandbyChanges();
    await finalSync(async () => {
      await fs.appendFile(path.join(a, log), 'one more record\n');
      await fs.link(path.join(a, 'etc/d6/f16.conf'), path.join(a, 'var/third-link.conf'));
    });
    const found = await store.verifyFinalSync(app1, app2);
    assert.equal(found.result, 'mismatch', JSON.stringify(found));
    assert.deepEqual(found.paths, ['etc/d4/f14.conf'], 'the later member of the split group');
    // The group whole again on the standby, for the next test.
    await fs.rm(path.join(b, 'etc/d4/f14.conf'));
    await fs.link(path.join(b, split), path.join(b, 'etc/d4/f14.conf'));
  });

  void it("a corrupted standby file that no sync sees is found and named; the final sync's own check passes", async () => {
    const a = store.mountpoint(app1);
    const b = store.mountpoint(app2);
    // Bring the pair together again (the switch back, then the next switch's catch-up).
    await store.sync(app2, app1);
    await store.sync(app1, app2);
    await store.settled();
    // The standby's file is corrupted, and its transid base moved past the corruption: the standby's
    // own changes since its base do not name the file, the source never changed it, so no sync looks
    // at it.
    const corrupted = 'etc/d5/f15.conf';
    await fs.writeFile(path.join(b, corrupted), 'corrupted on the standby\n');
    await forgetStandbyChanges();

    await finalSync(async () => {
      await fs.appendFile(path.join(a, log), 'one more record\n');
    });
    assert.notEqual(
      await fs.readFile(path.join(b, corrupted), 'utf8'),
      await fs.readFile(path.join(a, corrupted), 'utf8'),
      'the final sync (whose check of the changed paths passed) left the corruption',
    );
    await fs.appendFile(path.join(b, log), 'the standby serves\n');
    const check = await store.verifyFinalSync(app1, app2, { bytesPerSecond: 4 * 1024 * 1024 });
    assert.equal(check.result, 'mismatch', JSON.stringify(check));
    assert.deepEqual(check.paths, [corrupted]);
    // Paced: at most 4 MiB/s over both trees.
    assert.ok(
      check.durationMs >= (check.bytes / (4 * 1024 * 1024)) * 1000 * 0.9,
      `${check.bytes} bytes in ${Math.round(check.durationMs)} ms`,
    );
    for (const disk of [a, b])
      assert.deepEqual(await fs.readdir(path.join(path.dirname(disk), '.understudy-verify')), []);
  });

  void it('a pair without a sync base is skipped, not judged', async () => {
    const unknown: DiskRef = { lc: { ...lc2, name: `nobody-${run}` }, disk: 'app' };
    const check = await store.verifyFinalSync(app1, unknown);
    assert.equal(check.result, 'skipped');
    assert.match(check.reason ?? '', /no sync base/);
  });
});
