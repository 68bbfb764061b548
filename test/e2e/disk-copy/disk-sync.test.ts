/**
 * The incremental sync of a disk onto its copy (the final sync of a stateful switch, and the switch
 * back), against real btrfs pools on loop devices, through the DiskStore port: after a live copy, a
 * sync carries exactly what either side changed (new, modified, deleted, renamed files and
 * directories, hard links, symlinks, xattrs, owners), looks only at those paths, keeps a patched
 * system disk's own changes, runs the other way after a re-base, falls back to a whole sync without a
 * base, and fails cleanly (pool full, a failure half-way, the manager killed) with nothing lost.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exec, isUnderstudyError, spawnProcess } from '../../../src/core/index.ts';
import {
  BtrfsDiskStore,
  copyLive,
  diskCopySchema,
  getSyncBase,
  hashTree,
  listSyncBases,
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
    disks: [
      { name: 'system', pool, sizeMb: 512, mountPath: '/' },
      { name: 'app', pool, sizeMb: 512, mountPath: '/srv' },
      { name: 'data', pool, sizeMb: 512, mountPath: '/var/lib/data' },
    ],
    nics: [],
  };
}

async function write(root: string, relative: string, data: string): Promise<void> {
  await fs.mkdir(path.dirname(path.join(root, relative)), { recursive: true });
  await fs.writeFile(path.join(root, relative), data);
}

/** Holder directories of sync snapshots left beside a disk. */
async function syncHolders(disk: string): Promise<string[]> {
  return fs.readdir(path.join(path.dirname(disk), '.understudy-sync')).catch(() => []);
}

void describe('disk sync (btrfs pools on loop devices)', () => {
  let poolA: Pool;
  let poolB: Pool;
  let db: Db;
  let dbDir: string;
  let store: BtrfsDiskStore;
  const pools = new Map<string, Pool>();
  const run = tag();
  const lc1 = lcSpec(`s1-${run}`, 'pa');
  const lc2 = lcSpec(`s2-${run}`, 'pb');
  const ref = (lc: LcSpec, disk: string): DiskRef => ({ lc, disk });

  /** Runs `sync`, with the connection's synchronous setting at each write of a pair's bases. */
  async function basesWrites<T>(sync: () => Promise<T>): Promise<T & { synchronous: number[] }> {
    const synchronous: number[] = [];
    const prepare = db.prepare.bind(db);
    db.prepare = ((sql: string) => {
      const statement = prepare(sql);
      if (!sql.trimStart().startsWith('INSERT INTO sync_bases')) return statement;
      const runIt = statement.run.bind(statement);
      statement.run = ((...args: unknown[]) => {
        synchronous.push(db.pragma('synchronous', { simple: true }) as number);
        return runIt(...args);
      }) as typeof statement.run;
      return statement;
    }) as typeof db.prepare;
    try {
      return { ...(await sync()), synchronous };
    } finally {
      db.prepare = prepare;
    }
  }

  before(async () => {
    // Mounted as the host's pools are (src/host/pool.ts): a read does not change an inode.
    poolA = await createPool(1024, 'sa', { mountOptions: ['noatime'] });
    poolB = await createPool(1024, 'sb', { mountOptions: ['noatime'] });
    pools.set('pa', poolA).set('pb', poolB);
    dbDir = await fs.mkdtemp(path.join(os.tmpdir(), `us-sync-db-${tag()}-`));
    db = openStore(path.join(dbDir, 'store.db'), [diskCopySchema]);
    store = new BtrfsDiskStore({
      db,
      poolPath: (pool) => pools.get(pool)?.path ?? '/nonexistent',
      poolDevice: (pool) => pools.get(pool)?.device ?? '/dev/null',
    });
    // `data` is copied as a patch run copies a data disk: a tree of its own, on transid bases.
    for (const disk of ['system', 'app', 'data']) {
      const source = store.mountpoint(ref(lc1, disk));
      await fs.mkdir(path.dirname(source), { recursive: true });
      await fs.mkdir(path.dirname(store.mountpoint(ref(lc2, disk))), { recursive: true });
      await createSubvolume(source);
      await fillTree(source, { smallFiles: 300 });
      await copyLive(store, {
        from: ref(lc1, disk),
        to: ref(lc2, disk),
        jobId: `sync-${run}-${disk}`,
        freezer: noFreeze,
        verify: true,
        ...(disk === 'data' ? { ownTree: true } : {}),
      });
    }
  });
  after(async () => {
    db?.close();
    await poolA?.cleanup();
    await poolB?.cleanup();
    if (dbDir) await fs.rm(dbDir, { recursive: true, force: true });
  });

  void it('a copy leaves a sync base for the pair, recorded in the store', async () => {
    const base = getSyncBase(db, `${lc1.name}/app`, `${lc2.name}/app`);
    assert.ok(base, 'a sync base is recorded');
    assert.equal(base.generation, 0);
    assert.equal(base.state, 'ready');
    for (const snapshot of [base.baseA, base.baseB]) {
      const flags = await exec(['btrfs', 'property', 'get', snapshot, 'ro']);
      assert.match(flags.stdout, /ro=true/, `${snapshot} is a read-only snapshot`);
    }
  });

  void it('a data-disk sync carries exactly what changed on either side, looking only at those paths', async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    // The source's changes since the copy.
    await write(a, 'new/deep/file.txt', 'new file in new dirs');
    await fs.appendFile(path.join(a, 'etc/d1/f11.conf'), 'modified');
    await fs.rm(path.join(a, 'etc/d2/f12.conf'));
    await fs.rename(path.join(a, 'etc/d3/f13.conf'), path.join(a, 'etc/d3/f13.renamed'));
    await fs.rename(path.join(a, 'etc/d4'), path.join(a, 'moved-d4')); // 30 files come with it
    await fs.rm(path.join(a, 'etc/d5'), { recursive: true });
    await fs.link(path.join(a, 'etc/d6/f16.conf'), path.join(a, 'etc/d6/f16.link'));
    await fs.appendFile(path.join(a, 'var/hardlink.conf'), 'through one name of a hard-linked file');
    await fs.symlink('../etc/d7/f17.conf', path.join(a, 'var/new-symlink'));
    await exec(['setfattr', '-n', 'user.changed', '-v', 'yes', path.join(a, 'etc/d8/f18.conf')]);
    await fs.chown(path.join(a, 'etc/d9/f19.conf'), 4321, 8765);
    await fs.chmod(path.join(a, 'etc/d0/f10.conf'), 0o600);
    // The copy's own changes since the copy: the sender wins on a data disk.
    await write(b, 'b-only.txt', 'written by the standby only');
    await fs.appendFile(path.join(b, 'etc/d7/f27.conf'), 'changed on the standby');
    await fs.rm(path.join(b, 'etc/d8/f28.conf'));

    const result = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    assert.equal(result.method, 'incremental');
    assert.equal(result.generation, 1);
    await assertSameTree(a, b);
    // The tree holds ~330 entries; the change names ~60 (30 of them the moved directory's content).
    assert.ok(result.files > 10 && result.files < 90, `synced ${result.files} paths, not the whole tree`);
    for (const phase of ['snapshotMs', 'diffMs', 'copyMs', 'verifyMs'] as const)
      assert.ok(result[phase] >= 0 && result[phase] < 60_000, `${phase}: ${result[phase]}`);
    assert.ok(result.bytes > 0);
    await store.settled();
    const base = getSyncBase(db, `${lc1.name}/app`, `${lc2.name}/app`);
    assert.equal(base?.generation, 1);
    assert.equal(base?.pending.length, 0);
    // A data disk's pair leaves its snapshots at its first sync: each side's transaction is its base
    // (the subvolume named by its UUID), and no snapshot is left beside the disks.
    const uuidOf = async (p: string): Promise<string | undefined> =>
      /^\s*UUID:\s*(\S+)/m.exec((await exec(['btrfs', 'subvolume', 'show', p])).stdout)?.[1];
    assert.equal(base?.transids?.[`${lc1.name}/app`]?.uuid, await uuidOf(a));
    assert.equal(base?.transids?.[`${lc2.name}/app`]?.uuid, await uuidOf(b));
    assert.ok((base?.transids?.[`${lc1.name}/app`]?.transid ?? 0) > 0);
    assert.deepEqual([base?.baseA, base?.baseB], ['', '']);
    assert.equal((await syncHolders(a)).filter((h) => h.startsWith('app-')).length, 0);
    assert.equal((await syncHolders(b)).filter((h) => h.startsWith('app-')).length, 0);
  });

  void it('the switch back carries the standby writes to the original disk, incrementally', async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    await write(b, 'after-switch/key-1', 'acknowledged write on the standby');
    await fs.rm(path.join(b, 'new/deep/file.txt'));
    await fs.rename(path.join(b, 'moved-d4'), path.join(b, 'moved-again'));
    const result = await store.sync(ref(lc2, 'app'), ref(lc1, 'app'));
    assert.equal(result.method, 'incremental');
    assert.equal(result.generation, 2);
    await assertSameTree(b, a);
    assert.equal(
      await fs.readFile(path.join(a, 'after-switch/key-1'), 'utf8'),
      'acknowledged write on the standby',
    );
    // The standby's transaction predates the writes of the sync before (its first on transid bases,
    // which moved a directory of 30 files): they are carried back once more. Not the whole tree.
    assert.ok(result.files < 100, `synced ${result.files} paths`);
  });

  void it('a data disk copied as a tree of its own is on transid bases from its copy, and its syncs carry either side both ways', async () => {
    const key1 = `${lc1.name}/data`;
    const key2 = `${lc2.name}/data`;
    const a = store.mountpoint(ref(lc1, 'data'));
    const b = store.mountpoint(ref(lc2, 'data'));
    const uuidOf = async (p: string): Promise<string | undefined> =>
      /^\s*UUID:\s*(\S+)/m.exec((await exec(['btrfs', 'subvolume', 'show', p])).stdout)?.[1];
    const base = getSyncBase(db, key1, key2);
    assert.deepEqual([base?.baseA, base?.baseB], ['', ''], 'no snapshot base');
    assert.equal(base?.transids?.[key1]?.uuid, await uuidOf(a));
    assert.equal(base?.transids?.[key2]?.uuid, await uuidOf(b));
    assert.match((await exec(['btrfs', 'subvolume', 'show', b])).stdout, /Parent UUID:\s+-\n/);
    assert.equal((await syncHolders(a)).filter((h) => h.startsWith('data-')).length, 0);
    assert.equal((await syncHolders(b)).filter((h) => h.startsWith('data-')).length, 0);

    // The standby wrote its disk when it started; the source went on changing.
    await write(b, 'standby-start.log', 'written when the standby started');
    await fs.appendFile(path.join(b, 'etc/d1/f11.conf'), 'changed on the standby');
    await write(a, 'new/deep/file.txt', 'new file in new dirs');
    await fs.appendFile(path.join(a, 'etc/d2/f12.conf'), 'modified');
    await fs.rm(path.join(a, 'etc/d3/f13.conf'));
    await fs.rename(path.join(a, 'etc/d4'), path.join(a, 'moved-d4'));
    await fs.chmod(path.join(a, 'etc/d0/f10.conf'), 0o600);
    const forward = await store.sync(ref(lc1, 'data'), ref(lc2, 'data'));
    assert.equal(forward.method, 'incremental');
    assert.equal(forward.snapshotMs, 0, 'no snapshot');
    await assertSameTree(a, b);
    assert.ok(forward.files < 100, `synced ${forward.files} paths, not the whole tree`);

    // A final sync, then the switch back with the standby's writes.
    await write(a, 'last-write', 'the last acknowledged write before the cut');
    await store.prepareFinalSync(ref(lc1, 'data'), ref(lc2, 'data'));
    const final = await store.sync(ref(lc1, 'data'), ref(lc2, 'data'), { final: true });
    assert.equal(final.method, 'incremental');
    await assertSameTree(a, b);
    await write(b, 'after-switch/key-1', 'acknowledged write on the standby');
    await fs.rm(path.join(b, 'new/deep/file.txt'));
    const back = await store.sync(ref(lc2, 'data'), ref(lc1, 'data'));
    assert.equal(back.method, 'incremental');
    await assertSameTree(b, a);
    assert.equal(
      await fs.readFile(path.join(a, 'after-switch/key-1'), 'utf8'),
      'acknowledged write on the standby',
    );
    assert.equal(await fs.readFile(path.join(a, 'standby-start.log')).catch(() => 'absent'), 'absent');
  });

  void it('a final sync makes the target durable by fsync (its writes named in its base with their marks; a write of the target sharing their transaction is not lost), or with finalDurable commit by a commit (its base past them)', async () => {
    const key2 = `${lc2.name}/data`;
    const a = store.mountpoint(ref(lc1, 'data'));
    const b = store.mountpoint(ref(lc2, 'data'));
    const committing = new BtrfsDiskStore({
      db,
      poolPath: (pool) => pools.get(pool)?.path ?? '/nonexistent',
      poolDevice: (pool) => pools.get(pool)?.device ?? '/dev/null',
      finalDurable: 'commit',
    });
    const finalBy = async (s: BtrfsDiskStore, name: string) => {
      await s.prepareFinalSync(ref(lc1, 'data'), ref(lc2, 'data'));
      await write(a, name, `the last write before the cut (${name})`);
      const final = await s.sync(ref(lc1, 'data'), ref(lc2, 'data'), { final: true });
      assert.equal(final.method, 'incremental');
      await assertSameTree(a, b);
      await s.settled();
      return getSyncBase(db, `${lc1.name}/data`, key2)?.transids?.[key2];
    };
    const fsynced = await finalBy(store, 'last-fsynced');
    assert.ok(fsynced?.wrote, 'fsynced: the base names the writes');
    assert.ok(fsynced.wrote.paths.includes('last-fsynced'), fsynced.wrote.paths.join(', '));
    assert.ok(fsynced.wrote.through > fsynced.transid, 'written after the base');
    assert.ok(fsynced.wrote.marks?.['last-fsynced'], 'the file marked');
    // The target's own write right after the release, most likely in the transaction still holding
    // the sync's writes: its mark differs, so the next sync the same way makes it the source's again.
    await fs.writeFile(path.join(b, 'last-fsynced'), 'written by the standby right after the release');
    const committed = await finalBy(committing, 'last-committed');
    assert.equal(
      await fs.readFile(path.join(b, 'last-fsynced'), 'utf8'),
      await fs.readFile(path.join(a, 'last-fsynced'), 'utf8'),
    );
    assert.equal(committed?.wrote, undefined, 'committed: the base is past the writes');
    assert.ok((committed?.transid ?? 0) >= fsynced.wrote.through, 'the committed transaction');
    // Either way the next sync the same way has little of the target's own to carry.
    await write(a, 'after-both', 'a catch-up pass after the two final syncs');
    const next = await store.sync(ref(lc1, 'data'), ref(lc2, 'data'));
    await assertSameTree(a, b);
    assert.ok(next.files < 10, `synced ${next.files} paths`);
  });

  void it('without extended attributes the copy is made in-process, with every kind of change, never through a link', async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    await write(a, 'ip/new/deep/file', 'new file in new directories');
    await fs.appendFile(path.join(a, 'etc/d1/f21.conf'), 'modified in place');
    await fs.rm(path.join(a, 'etc/d2/f22.conf'));
    await fs.rename(path.join(a, 'etc/d6'), path.join(a, 'ip/moved-d6'));
    await write(a, 'ip/linked-1', 'one inode, two names');
    await fs.link(path.join(a, 'ip/linked-1'), path.join(a, 'ip/linked-2'));
    await fs.symlink('../etc/d7/f17.conf', path.join(a, 'ip/symlink'));
    await fs.chown(path.join(a, 'etc/d9/f29.conf'), 2222, 3333);
    await fs.chmod(path.join(a, 'etc/d9/f29.conf'), 0o4750);
    await write(a, 'ip/was-dir', 'a file where the copy has a directory');
    await fs.mkdir(path.join(a, 'ip/was-file'));
    await write(a, 'ip/was-file/inside', 'a directory where the copy has a file');
    await fs.mkdir(path.join(a, 'ip/dir-0700'), { mode: 0o700 });
    await fs.chown(path.join(a, 'ip/dir-0700'), 77, 88);
    // The standby's own changes, undone by the sender's version; one of them a link out of the disk
    // where the source has a directory: the copy must replace it, never write through it.
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), `us-sync-outside-${tag()}-`));
    await write(b, 'ip/was-dir/child', 'standby file in a directory');
    await write(b, 'ip/was-file', 'standby file');
    await fs.symlink(outside, path.join(b, 'ip/dir-0700'));
    try {
      const result = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
      assert.equal(result.method, 'incremental');
      assert.equal(result.copier, 'in-process');
      await assertSameTree(a, b);
      assert.deepEqual(await fs.readdir(outside), [], 'nothing was written through the link');
      const [one, two] = await Promise.all([
        fs.stat(path.join(b, 'ip/linked-1')),
        fs.stat(path.join(b, 'ip/linked-2')),
      ]);
      assert.equal(one.ino, two.ino, 'the two names share one inode on the copy');
      const dir = await fs.lstat(path.join(b, 'ip/dir-0700'));
      assert.ok(dir.isDirectory());
      assert.equal(dir.mode & 0o7777, 0o700);
      assert.deepEqual([dir.uid, dir.gid], [77, 88]);
      const file = await fs.stat(path.join(b, 'etc/d9/f29.conf'));
      assert.equal(file.mode & 0o7777, 0o4750, 'set-user-ID kept after the owner changed');
      const times = await Promise.all([fs.stat(path.join(a, 'ip')), fs.stat(path.join(b, 'ip'))]);
      assert.ok(
        Math.abs(times[0].mtimeMs - times[1].mtimeMs) < 0.01,
        'directory times set after its entries',
      );
    } finally {
      await fs.rm(outside, { recursive: true, force: true });
    }
  });

  void it('a sync that changes nothing looks at nothing', async () => {
    const result = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    assert.equal(result.method, 'incremental');
    // Only the roots' times may be named.
    assert.ok(result.files <= 1, `synced ${result.files} paths`);
    assert.equal(result.bytes, 0);
  });

  void it('a file that grew is patched in place with its new bytes only; a final sync takes no snapshot after the copy, and the next syncs carry what changed', async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    const log = 'log/journal.log';
    await write(a, log, `${'r'.repeat(99)}\n`.repeat(40_000)); // 4 MB
    await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    const inode = (await fs.stat(path.join(b, log))).ino;
    // The standby is held: its side of the final sync is done ahead. A sync prepared and then not
    // used (another sync comes first) leaves nothing behind.
    await store.prepareFinalSync(ref(lc1, 'app'), ref(lc2, 'app'));
    await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    await store.settled();
    assert.equal((await syncHolders(b)).filter((h) => h.startsWith('app-')).length, 0);
    await store.prepareFinalSync(ref(lc1, 'app'), ref(lc2, 'app'));
    // The service appends, and creates a file, after the last pass.
    await fs.appendFile(path.join(a, log), 'the last acknowledged record\n');
    await write(a, 'log/new-file', 'created after the last pass');
    // The final sync's record of its new bases does not wait for the disk (the switch's journal
    // write right after carries it there); any other sync's does.
    const final = await basesWrites(() =>
      store.sync(ref(lc1, 'app'), ref(lc2, 'app'), { final: true, deferDurability: true }),
    );
    assert.deepEqual(final.synchronous, [1], 'written without waiting for the disk (synchronous = NORMAL)');
    assert.equal(db.pragma('synchronous', { simple: true }), 2, 'the setting is restored');
    assert.equal(final.method, 'incremental');
    assert.ok(final.storeMs !== undefined, 'the store write is measured');
    assert.equal(final.patched, 1, 'the log is patched, not copied');
    assert.ok(final.bytes < 64 * 1024, `${final.bytes} bytes written for a 29-byte append`);
    assert.equal((await fs.stat(path.join(b, log))).ino, inode, 'patched in place');
    await assertSameTree(a, b);
    await store.settled();
    const base = getSyncBase(db, `${lc1.name}/app`, `${lc2.name}/app`);
    assert.ok(base?.transids, 'the pair stays on transid bases');
    assert.equal((await syncHolders(b)).filter((h) => h.startsWith('app-')).length, 0, 'no snapshot');
    // After the switch the standby serves and writes (and removes the file the final sync created);
    // the switch back carries it, patching the log onward in place (the original's service then
    // reads only the new records), and the sync after that (the next switch) finds the disks equal
    // again.
    const originalInode = (await fs.stat(path.join(a, log))).ino;
    await fs.appendFile(path.join(b, log), 'written on the standby\n');
    await write(b, 'log/standby-file', 'the standby wrote this');
    await fs.rm(path.join(b, 'log/new-file'));
    const back = await store.sync(ref(lc2, 'app'), ref(lc1, 'app'));
    await assertSameTree(b, a);
    assert.ok(back.files < 20, `synced ${back.files} paths back`);
    assert.equal(back.patched, 1, 'the log is patched back, not copied');
    assert.ok(back.bytes < 64 * 1024, `${back.bytes} bytes written back`);
    assert.equal((await fs.stat(path.join(a, log))).ino, originalInode, 'patched back in place');
    assert.match(
      await fs.readFile(path.join(a, log), 'utf8'),
      /acknowledged record\nwritten on the standby\n$/,
    );
    await fs.appendFile(path.join(a, log), 'and once more on the original\n');
    await store.prepareFinalSync(ref(lc1, 'app'), ref(lc2, 'app'));
    const durable = await basesWrites(() => store.sync(ref(lc1, 'app'), ref(lc2, 'app'), { final: true }));
    assert.deepEqual(durable.synchronous, [2], 'without deferDurability: on disk (synchronous = FULL)');
    await assertSameTree(a, b);
    // A final sync the other way right after a final sync (no catch-up pass between): still patched.
    // (What the service writes before the preparation is carried by its last pass.)
    await store.prepareFinalSync(ref(lc2, 'app'), ref(lc1, 'app'));
    await fs.appendFile(path.join(b, log), 'the standby, switched back at once\n');
    const finalBack = await store.sync(ref(lc2, 'app'), ref(lc1, 'app'), { final: true });
    await assertSameTree(b, a);
    assert.equal(finalBack.patched, 1, 'the final sync back patches the log too');
    assert.equal((await fs.stat(path.join(a, log))).ino, originalInode);
    await fs.appendFile(path.join(a, log), 'the original again\n');
    const forth = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    await assertSameTree(a, b);
    assert.equal(forth.patched, 1);
    assert.equal((await fs.stat(path.join(b, log))).ino, inode, "the standby's log is still the copy's file");
    await store.sync(ref(lc2, 'app'), ref(lc1, 'app'));
    await assertSameTree(b, a);
  });

  void it('after a final sync, the next sync the same way (a reversed switch, a crash just after it) patches the log onward too, unless the standby changed it', async (t) => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    const log = 'log/journal.log';
    const inode = (await fs.stat(path.join(b, log))).ino;
    const finalSync = async (): Promise<void> => {
      await store.prepareFinalSync(ref(lc1, 'app'), ref(lc2, 'app'));
      await fs.appendFile(path.join(a, log), 'acknowledged before the cut\n');
      const final = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'), { final: true });
      assert.equal(final.patched, 1);
      await assertSameTree(a, b);
    };
    await finalSync();
    // The switch was reversed after its final sync: the original keeps serving and appends; the
    // next catch-up pass goes the same way.
    await fs.appendFile(path.join(a, log), 'the original serves on after the reversed switch\n');
    const again = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    t.diagnostic(`same way after a final sync: ${again.bytes} bytes written, ${again.files} paths`);
    await assertSameTree(a, b);
    assert.equal(again.patched, 1, 'the log is patched onward, not copied whole');
    assert.ok(again.bytes < 64 * 1024, `${again.bytes} bytes written for a 50-byte append`);
    assert.equal((await fs.stat(path.join(b, log))).ino, inode, 'patched in place');
    // A final sync right after a final sync the same way (no catch-up pass between).
    await finalSync();
    await store.prepareFinalSync(ref(lc1, 'app'), ref(lc2, 'app'));
    await fs.appendFile(path.join(a, log), 'once more\n');
    const twice = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'), { final: true });
    await assertSameTree(a, b);
    assert.equal(twice.patched, 1, 'a final sync after a final sync the same way patches too');
    assert.ok(twice.bytes < 64 * 1024, `${twice.bytes} bytes written`);
    assert.equal((await fs.stat(path.join(b, log))).ino, inode);
    // The standby changed the log itself after the final sync (inside the bytes that sync wrote, and
    // beyond them): the next sync must not patch onto its file (copied whole), and ends equal to the
    // source.
    await finalSync();
    const handle = await fs.open(path.join(b, log), 'r+');
    const size = (await handle.stat()).size;
    await handle.write('X', size - 3);
    await handle.write('written by the standby itself', size);
    await handle.close();
    await fs.appendFile(path.join(a, log), 'the original again\n');
    const changed = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    await assertSameTree(a, b);
    assert.equal(changed.patched ?? 0, 0, 'a log the standby changed is not patched onto');
    // The same with a change of the standby only outside the final sync's bytes (its start).
    await finalSync();
    const early = await fs.open(path.join(b, log), 'r+');
    await early.write('Y', 10);
    await early.close();
    await fs.appendFile(path.join(a, log), 'and again\n');
    const changedEarly = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    await assertSameTree(a, b);
    assert.equal(changedEarly.patched ?? 0, 0);
    // The pair is back to the plain case: the next sync patches.
    await fs.appendFile(path.join(a, log), 'plain\n');
    const plain = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    await assertSameTree(a, b);
    assert.equal(plain.patched, 1);
  });

  void it("the final sync's preparation leaves no deleted snapshot to the pools' cleaners (the cut's snapshot does not wait for them)", async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    await write(a, 'cleaner/one', 'a change before the last pass');
    // The pass re-bases the pair; its previous bases are deleted after it returns.
    await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    await store.prepareFinalSync(ref(lc1, 'app'), ref(lc2, 'app'));
    for (const pool of [poolA, poolB]) {
      const deleted = await exec(['btrfs', 'subvolume', 'list', '-d', pool.path]);
      assert.equal(deleted.stdout.trim(), '', `${pool.path}: deleted subvolumes not yet dropped`);
    }
    await write(a, 'cleaner/two', 'the last write');
    const final = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'), { final: true });
    assert.equal(final.method, 'incremental');
    await assertSameTree(a, b);
    await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    await store.settled();
  });

  void it("a system-disk sync keeps the standby's patched files and carries the source's log line", async () => {
    const a = store.mountpoint(ref(lc1, 'system'));
    const b = store.mountpoint(ref(lc2, 'system'));
    const patched = 'etc/d1/f1.conf'; // stands for the dpkg database the patch changed
    await write(b, patched, 'patched on the standby');
    await write(b, 'usr/lib/new-package/file', 'installed by the patch');
    await write(a, 'var/log/app.log', 'a log line written after the copy\n');
    await write(a, patched, 'changed on the original after the copy'); // a conflict
    await write(a, 'etc/app.conf', 'config changed on the original');
    const result = await store.sync(ref(lc1, 'system'), ref(lc2, 'system'), { rule: 'receiver-wins' });
    assert.equal(result.method, 'incremental');
    assert.equal(await fs.readFile(path.join(b, patched), 'utf8'), 'patched on the standby');
    assert.equal(
      await fs.readFile(path.join(b, 'usr/lib/new-package/file'), 'utf8'),
      'installed by the patch',
    );
    assert.equal(
      await fs.readFile(path.join(b, 'var/log/app.log'), 'utf8'),
      'a log line written after the copy\n',
    );
    assert.equal(await fs.readFile(path.join(b, 'etc/app.conf'), 'utf8'), 'config changed on the original');
    assert.deepEqual(result.conflicts, { count: 1, paths: [patched] });

    // Back (a rollback): the standby's log line goes to the original; the patch stays on the standby.
    await fs.appendFile(path.join(b, 'var/log/app.log'), 'a log line written on the standby\n');
    const back = await store.sync(ref(lc2, 'system'), ref(lc1, 'system'), { rule: 'receiver-wins' });
    assert.equal(back.method, 'incremental');
    assert.equal(
      await fs.readFile(path.join(a, 'var/log/app.log'), 'utf8'),
      'a log line written after the copy\na log line written on the standby\n',
    );
    assert.equal(await fs.readFile(path.join(a, patched), 'utf8'), 'changed on the original after the copy');
    assert.equal(await fs.lstat(path.join(a, 'usr/lib/new-package')).catch(() => undefined), undefined);

    // A switch whose final sync has nothing to carry (the original changed nothing), then back: the
    // standby's second patch stays on the standby, its later log line goes back.
    await write(b, 'usr/lib/second-package/file', 'installed by a second patch');
    const quiet = await store.sync(ref(lc1, 'system'), ref(lc2, 'system'), { rule: 'receiver-wins' });
    assert.equal(quiet.files, 0);
    await fs.appendFile(path.join(b, 'var/log/app.log'), 'after the quiet switch\n');
    await store.sync(ref(lc2, 'system'), ref(lc1, 'system'), { rule: 'receiver-wins' });
    assert.match(await fs.readFile(path.join(a, 'var/log/app.log'), 'utf8'), /after the quiet switch\n$/);
    assert.equal(await fs.lstat(path.join(a, 'usr/lib/second-package')).catch(() => undefined), undefined);
  });

  void it('without a base a data disk is synced whole (and says so), a system disk is skipped', async () => {
    const lc3 = lcSpec(`s3-${run}`, 'pb');
    const target = store.mountpoint(ref(lc3, 'app'));
    await fs.mkdir(path.dirname(target), { recursive: true });
    await createSubvolume(target);
    await write(target, 'stale', 'not on the source');
    const whole = await store.sync(ref(lc1, 'app'), ref(lc3, 'app'));
    assert.equal(whole.method, 'whole');
    assert.match(whole.reason ?? '', /no sync base/);
    await assertSameTree(store.mountpoint(ref(lc1, 'app')), target);
    await write(store.mountpoint(ref(lc1, 'app')), 'after-whole', 'x');
    const next = await store.sync(ref(lc1, 'app'), ref(lc3, 'app'));
    assert.equal(next.method, 'incremental', 'the whole sync left bases for the next one');
    await assertSameTree(store.mountpoint(ref(lc1, 'app')), target);

    await createSubvolume(store.mountpoint(ref(lc3, 'system')));
    const skipped = await store.sync(ref(lc1, 'system'), ref(lc3, 'system'), { rule: 'receiver-wins' });
    assert.equal(skipped.method, 'skipped');
    assert.deepEqual(await fs.readdir(store.mountpoint(ref(lc3, 'system'))), []);
  });

  void it('a sync failing half-way leaves the source untouched and finishes when run again', async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    for (let i = 0; i < 20; i++) await write(a, `half/a${i}/file`, `file ${i}`);
    await write(a, 'etc/d9/zz-late', 'sorted after the blocked directory');
    const before = (await hashTree(a)).digest;
    // An immutable directory on the standby makes rsync fail part-way through the list.
    await fs.mkdir(path.join(b, 'half/a5'), { recursive: true });
    await exec(['chattr', '+i', path.join(b, 'half/a5')]);
    try {
      await assert.rejects(store.sync(ref(lc1, 'app'), ref(lc2, 'app')), (error: unknown) => {
        assert.ok(isUnderstudyError(error, 'DISK_SYNC_FAILED'), String(error));
        assert.match(error.message, new RegExp(`${lc1.name}/app onto ${lc2.name}/app`));
        return true;
      });
    } finally {
      await exec(['chattr', '-i', path.join(b, 'half/a5')]);
    }
    assert.equal((await hashTree(a)).digest, before, 'the source is untouched');
    assert.equal(getSyncBase(db, `${lc1.name}/app`, `${lc2.name}/app`)?.state, 'ready');
    const again = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    assert.equal(again.method, 'incremental');
    await assertSameTree(a, b);
  });

  void it("the standby's pool full: POOL_FULL names the pool and what to do; nothing is lost; the re-run finishes", async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    // Fill the standby's pool with a ballast outside the disk, then write more than is left on the source.
    const ballast = path.join(poolB.path, `ballast-${run}`);
    await exec(['fallocate', '-l', '10M', ballast]);
    const free = Number(
      /Free \(estimated\):\s+(\d+)/.exec(
        (await exec(['btrfs', 'filesystem', 'usage', '-b', poolB.path])).stdout,
      )?.[1],
    );
    await exec(['fallocate', '-l', String(Math.max(0, free - 40 * 1024 * 1024)), `${ballast}-2`]);
    await exec([
      'dd',
      'if=/dev/urandom',
      `of=${path.join(a, 'big.bin')}`,
      'bs=1M',
      'count=120',
      'status=none',
    ]);
    const before = (await hashTree(a)).digest;
    await assert.rejects(store.sync(ref(lc1, 'app'), ref(lc2, 'app')), (error: unknown) => {
      assert.ok(isUnderstudyError(error, 'POOL_FULL'), String(error));
      assert.match(error.message, /pool "pb"/);
      assert.match(error.message, new RegExp(poolB.path));
      assert.match(error.hint ?? '', /Free space in the pool "pb"/);
      return true;
    });
    assert.equal((await hashTree(a)).digest, before, 'the source is untouched');
    await fs.rm(`${ballast}-2`);
    await fs.rm(ballast);
    const again = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    assert.equal(again.method, 'incremental');
    await assertSameTree(a, b);
  });

  void it('the manager killed during a sync: recovery removes its snapshots, the bases stay, the re-run finishes', async () => {
    const a = store.mountpoint(ref(lc1, 'app'));
    const b = store.mountpoint(ref(lc2, 'app'));
    await exec([
      'dd',
      'if=/dev/urandom',
      `of=${path.join(a, 'big2.bin')}`,
      'bs=1M',
      'count=200',
      'status=none',
    ]);
    await store.settled();
    const holdersBefore = await syncHolders(a);
    const holdersBeforeB = await syncHolders(b);
    const child = spawnProcess(
      [
        process.execPath,
        '--import',
        'tsx',
        path.join(path.dirname(fileURLToPath(import.meta.url)), 'sync-child.ts'),
        JSON.stringify({
          db: path.join(dbDir, 'store.db'),
          pools: { pa: poolA.path, pb: poolB.path },
          from: lc1,
          to: lc2,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Kill it once its copy is writing (the temporary .big2.bin.* beside the file).
    for (let i = 0; i < 600; i++) {
      const state = listSyncBases(db).find((s) => s.diskA === `${lc1.name}/app`)?.state;
      const partial = (await fs.readdir(b)).some((name) => name.startsWith('.big2.bin'));
      if (state === 'syncing' && partial) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.child.kill('SIGKILL');
    await child.done;
    assert.equal(listSyncBases(db).find((s) => s.diskA === `${lc1.name}/app`)?.state, 'syncing');
    // An rsync of the manager (a copy with extended attributes) may outlive it: wait for it (it
    // writes only what the sync would).
    await exec(['sh', '-c', 'while pgrep -f "^rsync .*understudy-sync" >/dev/null; do sleep 0.1; done'], {
      timeoutMs: 60_000,
    });
    const cleaned = await store.recoverCopies(db);
    assert.ok(
      cleaned.some((c) => c.includes(`${lc1.name}/app`)),
      `recovered: ${cleaned.join(', ')}`,
    );
    const base = getSyncBase(db, `${lc1.name}/app`, `${lc2.name}/app`);
    assert.equal(base?.state, 'ready');
    assert.deepEqual(await syncHolders(a), holdersBefore, 'only the bases are left beside the source');
    assert.deepEqual(await syncHolders(b), holdersBeforeB, 'only the bases are left beside the target');
    const again = await store.sync(ref(lc1, 'app'), ref(lc2, 'app'));
    assert.equal(again.method, 'incremental');
    await assertSameTree(a, b);
  });
});
