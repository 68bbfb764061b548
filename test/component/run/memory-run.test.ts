/**
 * The whole patch run — forward, switch, rollback — against the in-memory driver and disk store: the
 * run reaches LCs and disks only through the PartitioningDriver and DiskStore ports.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getLc } from '../../../src/inventory/index.ts';
import { rollbackRun, startRun } from '../../../src/run/index.ts';
import { createMemoryRun } from '../../helpers/memory-run.ts';

test('forward: the standby is patched, the service moves with its data; rollback moves it back with the data written since', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  f.writeData('lc1', 'before', 'written on lc1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  assert.equal(run.state, 'switched', run.error ?? '');
  assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });
  assert.equal(f.data('lc2', 'before'), 'written on lc1');
  assert.equal(getLc(f.db, 'lc2').role, 'active');
  assert.equal(getLc(f.db, 'lc1').role, 'retired');
  assert.equal(f.catalogue.getPatch('demo-1.0.1').name, 'demo-1.0.1');

  f.writeData('lc2', 'after', 'written on lc2');
  const back = await rollbackRun(run.id, f.deps);
  assert.equal(back.state, 'rolled-back', back.error ?? '');
  assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
  assert.equal(f.data('lc1', 'after'), 'written on lc2');
  assert.equal(getLc(f.db, 'lc1').role, 'active');
});
