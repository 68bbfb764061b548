/**
 * The agent's health report after a switch judges the service by its declared check, through the
 * run's one implementation (checkRunServiceHealth): here an HTTP check of `/missing` expecting 404,
 * which a GET of a health path expecting 200 would misjudge. Over the in-memory host, whose LCs
 * answer 200 at `/health` and `/version` and 404 elsewhere.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { processOwner } from '../../../src/core/index.ts';
import type { App } from '../../../src/app/index.ts';
import { demoService } from '../../../src/demo/index.ts';
import { AppHostRunner, agentRunsSchema } from '../../../src/fleet/index.ts';
import { openStore } from '../../../src/store/index.ts';
import { startRun } from '../../../src/run/index.ts';
import { createMemoryRun } from '../../helpers/memory-run.ts';

test('the agent reports a switched service healthy by its declared check (404 expected at /missing), failing once it stops answering', async (t) => {
  const f = await createMemoryRun({
    lc1: { services: [{ ...demoService, health: { kind: 'http', path: '/missing', status: 404 } }] },
  });
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  assert.equal(run.state, 'switched', run.error ?? '');

  const app = {
    db: f.db,
    catalogue: f.catalogue,
    owner: processOwner(),
    start: async () => f.mem.host,
  } as unknown as App;
  const runner = new AppHostRunner({
    app,
    runs: openStore(path.join(f.dir, 'agent-runs.db'), [agentRunsSchema]),
  });
  t.after(() => runner.close());

  const healthy = await runner.health({ workId: 1, lc: 'lc1', result: { runId: run.id } });
  assert.equal(healthy.healthy, true, JSON.stringify(healthy.detail));
  assert.equal(healthy.detail.status, 404);
  assert.equal(healthy.detail.check, 'GET http://198.18.0.10:80/missing expecting 404');
  assert.equal(healthy.detail.servedBy, 'lc2');
  assert.equal(healthy.detail.version, '1.0.1');

  // The serving LC stops: nothing answers at the service address.
  await f.mem.driver.stop('lc2');
  const failing = await runner.health({ workId: 1, lc: 'lc1', result: { runId: run.id } });
  assert.equal(failing.healthy, false, JSON.stringify(failing.detail));
  assert.equal(failing.detail.state, 'failing');
  assert.match(String(failing.detail.error), /GET http:\/\/198\.18\.0\.10:80\/missing failed/);
});
