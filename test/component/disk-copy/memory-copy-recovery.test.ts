// The live copy and its recovery over the in-memory store's copy primitives, with a real SQLite
// store: a copy whose process died half-way (its lease's owner gone) is removed by the recovery at
// start — snapshots on both sides and the partial destination — and marked failed, once; a copy
// whose process lives is left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createOwner } from '../../../src/core/index.ts';
import { copyLive, copyLease, diskCopySchema, getCopyJob } from '../../../src/disk-copy/index.ts';
import { openStore } from '../../../src/store/index.ts';
import type { LcSpec } from '../../../src/drivers/index.ts';
import { MemoryDiskStore, MemoryDisks } from '../../helpers/memory-host.ts';

test('a copy interrupted half-way is removed by the recovery at start, and only once its process is gone', async (t) => {
  const db = openStore(':memory:', [diskCopySchema]);
  t.after(() => db.close());
  const disks = new MemoryDisks();
  const store = new MemoryDiskStore(disks);
  // The store reads only an LC's name and disks.
  const lc = (name: string): LcSpec =>
    ({ name, disks: [{ name: 'app', pool: 'main', sizeMb: 1, mountPath: '/srv' }] }) as unknown as LcSpec;
  const lc1 = lc('lc1');
  const lc2 = lc('lc2');
  disks.volumes.set('lc1/app', new Map([['/data', Buffer.from('lc1 data')]]));
  // The manager "dies" during the first catch-up send: that send never ends.
  let reached: () => void = () => undefined;
  const stuck = new Promise<void>((resolve) => (reached = resolve));
  store.copyHooks = {
    whileSending: ({ snapshot }) => {
      if (snapshot !== 'pass-1') return;
      reached();
      return new Promise<void>(() => undefined);
    },
  };
  const noFreeze = { async freeze() {}, async thaw() {} };
  void copyLive(store, {
    from: { lc: lc1, disk: 'app' },
    to: { lc: lc2, disk: 'app' },
    jobId: 'job1',
    freezer: noFreeze,
    verify: true,
    db,
  });
  await stuck;
  const leftovers = (): string[] => [...disks.volumes.keys()].filter((k) => k !== 'lc1/app');
  assert.ok(
    leftovers().some((k) => k.includes('@job1/')),
    'the copy has snapshots',
  );

  assert.deepEqual(await store.recoverCopies(db), [], 'a copy whose process lives is left alone');
  assert.equal(getCopyJob(db, 'job1').state, 'running');

  const dead = createOwner();
  dead.end();
  db.prepare('UPDATE leases SET owner = ? WHERE resource = ?').run(dead.id, copyLease('job1'));
  assert.deepEqual(await store.recoverCopies(db), ['job1'], 'once its process is gone, it is recovered');
  assert.equal(getCopyJob(db, 'job1').state, 'failed');
  assert.deepEqual(leftovers(), [], 'no snapshot and no partial destination left');
  assert.equal(disks.volumes.get('lc1/app')?.get('/data')?.toString(), 'lc1 data', 'the source is untouched');
  assert.deepEqual(await store.recoverCopies(db), [], 'recovered once');
});
