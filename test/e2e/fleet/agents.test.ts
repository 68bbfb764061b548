/**
 * A rollout over real LCs on three agents. The control plane (PostgreSQL 15 with TLS, graphile-worker,
 * the HTTPS enrolment endpoint) listens on an address in 198.18.0.0/15 on a bridge of the test; three
 * hosts on this machine, each with its own state directory, pools, bridge, LC pair (busybox image,
 * namespace driver) and client, enrol with `understudy agent enrol` and run `understudy agent run`
 * as child processes. Canary on the first host, then a wave on the second, whose patch fails: the
 * rollout halts at max errors 0, the third host is never dispatched, and each served address answers
 * every request of a real load (0 failed) throughout. The canary's agent reports its switched
 * service's health during the watch, and compliance shows it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { listRuns } from '../../../src/run/index.ts';
import { createRollout, getRollout, lcCompliance, syncInventory } from '../../../src/fleet/index.ts';
import { startRealFleet } from './real-fleet.ts';

test('three agents, real LCs: canary, then a wave whose failing host halts the rollout at max errors; 0 failed requests', async (t) => {
  const fleet = await startRealFleet(t, {
    hosts: ['fa', 'fb', 'fc'],
    patch: (host, f) =>
      host === 'fb'
        ? // The same patch name as on the other hosts, but it does not apply on this one.
          f.addPatch(
            'demo-1.0.1',
            'diff',
            '--- a/etc/nonexistent\n+++ b/etc/nonexistent\n@@ -1 +1 @@\n-old\n+new\n',
          )
        : f.addVersionPatch(),
  });
  const { fx, agents, worker, diagnose } = fleet;
  const rollout = await createRollout(
    fx.db,
    {
      name: 'demo security fix',
      patches: { securityOnly: true },
      targets: { groups: ['web'] },
      canary: 1,
      maxConcurrency: 1,
      maxErrors: 0,
      watchSeconds: 2,
    },
    new Date(),
  );
  assert.deepEqual(rollout.patchSet, ['demo-1.0.1']);
  assert.deepEqual(
    rollout.waves.map((w) => w.map((x) => `${x.host}/${x.lc}`)),
    [['fa/lc1'], ['fb/lc1'], ['fc/lc1']],
  );
  await worker.kick(rollout.id);
  const ended = await waitFor(
    async () => {
      const r = await getRollout(fx.db, rollout.id);
      return r.state === 'halted' || r.state === 'completed' ? r : undefined;
    },
    { timeoutMs: 600_000, intervalMs: 1000 },
  );
  assert.ok(ended, `the rollout ended\n${diagnose()}`);
  await sleep(1500); // the loads keep going over the end of the rollout
  const reports = await fleet.stopLoads();

  assert.equal(ended.state, 'halted', diagnose());
  assert.match(ended.reason ?? '', /wave 2: 1 failures > max errors 0/);
  const work = await fx.db.query<{
    wave: number;
    host_id: string;
    lc: string;
    state: string;
    result: Record<string, unknown>;
  }>(`SELECT wave, host_id, lc, state, result FROM fleet.work WHERE rollout_id = $1 ORDER BY wave`, [
    rollout.id,
  ]);
  assert.deepEqual(
    work.rows.map((w) => `${w.wave}:${w.host_id}/${w.lc}:${w.state}`),
    ['0:fa/lc1:succeeded', '1:fb/lc1:failed'],
    'the canary switched, the wave failed, the third host got nothing',
  );
  const [canary, failed] = work.rows;
  // The control plane has each run's id, state and figures.
  const faRuns = listRuns(agents[0]!.f.t.app.db);
  assert.equal(faRuns.length, 1);
  assert.equal(canary?.result.runId, faRuns[0]?.id);
  assert.equal(canary?.result.state, 'switched');
  assert.equal(canary?.result.versionAfter, '1.0.1');
  assert.ok(Number(canary?.result.durationMs) > 0);
  const fbRuns = listRuns(agents[1]!.f.t.app.db);
  assert.equal(fbRuns.length, 1);
  assert.equal(failed?.result.runId, fbRuns[0]?.id);
  assert.equal(failed?.result.state, 'failed');
  assert.match(String(failed?.result.error), /demo-1\.0\.1/);
  assert.equal(listRuns(agents[2]!.f.t.app.db).length, 0, 'nothing ran on the third host');

  // 0 failed requests on each served address, and who serves what now.
  for (const [i, a] of agents.entries()) {
    const summary = reports[i]?.summary;
    assert.ok((summary?.total ?? 0) > 100, `${a.host}: ${summary?.total} requests`);
    assert.equal(summary?.failed, 0, `${a.host}: failed requests ${JSON.stringify(summary?.byOutcome)}`);
  }
  const versions = await Promise.all(agents.map((a) => a.f.get('/version')));
  assert.deepEqual(
    versions.map((v) => `${v.servedBy}:${v.version}`),
    ['lc2:1.0.1', 'lc1:1.0.0', 'lc1:1.0.0'],
  );

  // During the watch the canary's agent reported the switched service's health: the patched LC2.
  const health = await fx.db.query<{
    host_id: string;
    healthy: boolean;
    served_by: string;
    version: string;
  }>(
    `SELECT host_id, (body->>'healthy')::boolean AS healthy, body->>'servedBy' AS served_by,
       body->>'version' AS version FROM fleet.reports WHERE kind = 'health'`,
  );
  assert.ok(health.rows.length >= 1, 'health reports arrived during the watch');
  for (const h of health.rows)
    assert.deepEqual([h.host_id, h.healthy, h.served_by, h.version], ['fa', true, 'lc2', '1.0.1']);

  // Compliance from what the agents reported: the failed host still has the patch pending.
  await syncInventory(fx.db);
  const compliance = new Map((await lcCompliance(fx.db)).map((c) => [`${c.host}/${c.lc}`, c]));
  assert.equal(compliance.get('fa/lc1')?.lastRunResult, 'succeeded');
  assert.equal(compliance.get('fa/lc1')?.lastHealth?.healthy, true);
  assert.equal(compliance.get('fb/lc1')?.lastRunResult, 'failed');
  assert.deepEqual(
    compliance.get('fb/lc1')?.pendingSecurity.map((p) => p.name),
    ['demo-1.0.1'],
  );
});
