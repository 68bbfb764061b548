/** `understudy switch <from> <to>` bound to the resource table and the driver, as an operator runs it. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventLog } from '../../../src/events/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

describe('understudy switch', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
    await f.t.host.driver.start(getLc(f.t.app.db, 'lc2'));
    await f.t.host.driver.waitUntilUp('lc2');
  });
  after(async () => f?.dispose());

  test('moves the service address with its data (stateful, instant), then back (swap-address), with no failed request', async () => {
    assert.equal(await f.put('/kv/k', 'from lc1'), 200);
    const load = await f.load(200);
    const out = await f.t.cli(['--json', 'switch', 'lc1', 'lc2', '--method', 'instant', '--stateful']);
    assert.equal((JSON.parse(out.stdout) as { outcome: string }).outcome, 'switched');
    // Once LC2 serves, its data disks are compared whole with LC1's at the cut.
    const checks = new EventLog(f.t.app.db).latest(10, { type: 'verify.tree' });
    assert.ok(checks.length > 0, out.stderr);
    assert.deepEqual(
      checks.map((e) => e.data.result),
      checks.map(() => 'ok'),
      JSON.stringify(checks.map((e) => e.data)),
    );
    const moved = await f.get('/kv/k');
    assert.equal(moved.servedBy, 'lc2');
    assert.equal(moved.body, 'from lc1', 'the final sync carried the data over');
    assert.equal(getLc(f.t.app.db, 'lc2').role, 'active');
    const back = await f.t.cli(['--json', 'switch', 'lc2', 'lc1', '--method', 'swap-address', '--stateful']);
    assert.equal((JSON.parse(back.stdout) as { outcome: string }).outcome, 'switched');
    const report = await load.stop();
    assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
    assert.equal((await f.get('/version')).servedBy, 'lc1');
    const unknown = await f.t.cli(['switch', 'lc1', 'lc2', '--method', 'teleport'], { okCodes: [1, 2] });
    assert.match(unknown.stderr, /teleport/);
  });
});
