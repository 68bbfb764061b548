/**
 * The patch run on real LCs under real load: the service never fails a request, the patched version
 * serves after the switch, no acknowledged write is lost, and rollback brings the data back to LC1.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assetsDir } from '../../../src/images/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { listRuns, rollbackRun, startRun } from '../../../src/run/index.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

describe('patch run', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
  });
  after(async () => f?.dispose());

  test('patches LC1 under load with zero failed requests, then rolls back with the data written meanwhile', async () => {
    for (let i = 0; i < 50; i++) assert.equal(await f.put(`/kv/before-${i}`, `v${i}`), 200);
    await f.addVersionPatch();
    const load = await f.load(300);
    const run = await startRun(
      { lc: 'lc1', scanDatabase: path.join(assetsDir, 'clamav/eicar-test.hdb') },
      f.deps,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const report = await load.stop();

    assert.equal(run.state, 'switched');
    assert.deepEqual(
      run.steps.map((s) => s.state),
      run.steps.map(() => 'done'),
    );
    assert.equal(report.summary.failed, 0, `failed requests: ${JSON.stringify(report.summary.byOutcome)}`);
    assert.ok((report.summary.byServedBy.lc2 ?? 0) > 0, 'lc2 served after the switch');
    assert.equal(run.facts.versionBefore, '1.0.0');
    assert.equal(run.facts.versionAfter, '1.0.1');
    const now = await f.get('/version');
    assert.equal(now.servedBy, 'lc2');
    assert.equal(now.version, '1.0.1');
    for (let i = 0; i < 50; i++) assert.equal((await f.get(`/kv/before-${i}`)).body, `v${i}`);
    for (const w of report.ackedWrites)
      assert.equal((await f.get(w.path)).body, w.value, `acknowledged write ${w.path} kept`);
    assert.ok(report.ackedWrites.length > 0);
    // The patch table records the result; the next-run flag is cleared.
    const state = f.catalogue.lcStates({ patch: 'demo-1.0.1', lc: 'lc1' })[0];
    assert.equal(state?.lastResult, 'ok');
    assert.equal(state?.applyNextRun, false);
    assert.ok(state?.appliedAt);
    assert.equal(getLc(f.t.app.db, 'lc2').role, 'active');
    assert.equal(getLc(f.t.app.db, 'lc1').role, 'retired');
    assert.match(run.facts.copies?.find((c) => c.disk === 'app')?.summary ?? '', /[1-9]\d* writes? to/);

    // Writes after the switch go to lc2; rollback carries them back to lc1.
    assert.equal(await f.put('/kv/after-switch', 'on lc2'), 200);
    const back = await f.load(300);
    const rolled = await rollbackRun(run.id, f.deps);
    await new Promise((r) => setTimeout(r, 500));
    const backReport = await back.stop();
    assert.equal(rolled.state, 'rolled-back');
    assert.equal(
      backReport.summary.failed,
      0,
      `failed requests in the rollback: ${JSON.stringify(backReport.summary.byOutcome)}`,
    );
    const afterRollback = await f.get('/kv/after-switch');
    assert.equal(afterRollback.servedBy, 'lc1');
    assert.equal(afterRollback.version, '1.0.0');
    assert.equal(afterRollback.body, 'on lc2');
    for (const w of backReport.ackedWrites)
      assert.equal(
        (await f.get(w.path)).body,
        w.value,
        `write ${w.path} acknowledged during the rollback kept`,
      );
    assert.equal(getLc(f.t.app.db, 'lc1').role, 'active');
    assert.deepEqual(
      getLc(f.t.app.db, 'lc1').nics[0]?.addresses,
      [`${f.service}/24`],
      'lc1 holds the service address again, and only it',
    );
  });
});

describe('post-switch health watch', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
  });
  after(async () => f?.dispose());

  test('the service fails on LC2 after the switch: the run rolls back by itself, keeping the data', async () => {
    await f.addVersionPatch();
    const running = startRun({ lc: 'lc1', skipScan: true, watchMs: 60_000 }, f.deps);
    // Wait for the switch, write on LC2, then make LC2's service fail.
    // The run stays running while it watches: the switch step is done.
    const switched = (): boolean =>
      listRuns(f.t.app.db)[0]?.steps.find((s) => s.name === 'switch')?.state === 'done';
    for (let i = 0; i < 600 && !switched(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await f.put('/kv/written-on-lc2', 'keep me'), 200);
    await f.t.host.driver.exec('lc2', ['sh', '-c', 'kill -9 "$(cat /run/demo.pid)"']);
    const run = await running;
    assert.equal(run.state, 'rolled-back');
    assert.equal(run.facts.watchOutcome, 'unhealthy');
    const now = await f.get('/kv/written-on-lc2');
    assert.equal(now.servedBy, 'lc1');
    assert.equal(now.body, 'keep me', 'data written on LC2 before it failed came back');
  });
});
