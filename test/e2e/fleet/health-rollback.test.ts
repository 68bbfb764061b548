/**
 * Automatic rollback on real LCs. The control plane (PostgreSQL 15 with TLS, graphile-worker, the
 * HTTPS enrolment endpoint) on an address in 198.18.0.0/15; two hosts on this machine, each with its
 * own state directory, pools, bridge, LC pair (busybox image, namespace driver) and client, enrolled
 * with `understudy agent enrol` and running `understudy agent run` as child processes.
 *
 * The canary's patch run switches (1.0.1 served by LC2) and its agent reports the service healthy;
 * then the patched service goes unhealthy during the watch (its data directory turns read-only for
 * new files, so GET /health answers 503 while every request is still served). The agent reports it, the control plane
 * counts the failure (max errors 0 crossed), queues the LC's rollback and halts the rollout in the
 * same tick: the agent rolls the LC back (1.0.0 served by LC1 again), the second host gets no work,
 * and each served address answers every request of a real load (0 failed) throughout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { listRuns } from '../../../src/run/index.ts';
import { createRollout, getRollout } from '../../../src/fleet/index.ts';
import { startRealFleet } from './real-fleet.ts';

test('real LCs: a canary reported unhealthy during its watch is rolled back automatically and the rollout halts; 0 failed requests', async (t) => {
  const fleet = await startRealFleet(t, { hosts: ['ra', 'rb'] });
  const { fx, agents, worker, diagnose } = fleet;
  const rollout = await createRollout(
    fx.db,
    {
      name: 'demo fix, watched',
      patches: { securityOnly: true },
      targets: { groups: ['web'] },
      canary: 1,
      maxConcurrency: 1,
      maxErrors: 0,
      // Long enough that the service goes unhealthy inside the canary's watch.
      watchSeconds: 600,
    },
    new Date(),
  );
  assert.equal(rollout.spec.autoRollback, true);
  assert.deepEqual(
    rollout.waves.map((w) => w.map((x) => `${x.host}/${x.lc}`)),
    [['ra/lc1'], ['rb/lc1']],
  );
  await worker.kick(rollout.id);

  const healthOf = async () =>
    (
      await fx.db.query<{ id: string; healthy: boolean; status: number | null; served_by: string | null }>(
        `SELECT id, (body->>'healthy')::boolean AS healthy, (body->>'status')::int AS status,
           body->>'servedBy' AS served_by
         FROM fleet.reports WHERE kind = 'health' AND host_id = 'ra' ORDER BY id`,
      )
    ).rows;
  // The canary switched and its agent reports the patched service healthy.
  const healthy = await waitFor(
    async () => {
      const rows = await healthOf();
      return rows.some((r) => r.healthy && r.served_by === 'lc2') ? rows : undefined;
    },
    { timeoutMs: 480_000, intervalMs: 500 },
  );
  assert.ok(healthy, `the canary switched and was reported healthy\n${diagnose()}`);
  assert.equal((await getRollout(fx.db, rollout.id)).state, 'running');
  const versionAfter = await agents[0]!.f.get('/version');
  assert.deepEqual([versionAfter.servedBy, versionAfter.version], ['lc2', '1.0.1']);

  // The patched service goes unhealthy during the watch: its data directory turns read-only for new
  // files inside LC2 (a read-only bind mount over itself), so the health probe, which creates a
  // file there, fails and /health answers 503; the logs the service already holds open stay
  // writable, so every request of the load is still served.
  await agents[0]!.f.t.host.driver.exec('lc2', [
    'sh',
    '-c',
    'mount -o bind /srv/data /srv/data && mount -o remount,ro,bind /srv/data',
  ]);
  const broke = await agents[0]!.f.get('/health');
  assert.equal(broke.status, 503, 'the patched service reports itself unhealthy');

  const ended = await waitFor(
    async () => {
      const r = await getRollout(fx.db, rollout.id);
      const back = await fx.db.query<{ state: string }>(
        `SELECT state FROM fleet.work WHERE rollout_id = $1 AND kind = 'rollback'`,
        [rollout.id],
      );
      return r.state === 'halted' && back.rows[0]?.state === 'succeeded' ? r : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 500 },
  );
  assert.ok(ended, `the rollout halted and the canary was rolled back\n${diagnose()}`);
  assert.match(ended.reason ?? '', /wave 1: 1 failures > max errors 0/);
  await sleep(1500); // the loads keep going over the end of the rollout
  const reports = await fleet.stopLoads();

  const work = await fx.db.query<{ kind: string; host_id: string; lc: string; state: string }>(
    `SELECT kind, host_id, lc, state FROM fleet.work WHERE rollout_id = $1 ORDER BY id`,
    [rollout.id],
  );
  assert.deepEqual(
    work.rows.map((w) => `${w.kind}:${w.host_id}/${w.lc}:${w.state}`),
    ['patch:ra/lc1:reverted', 'rollback:ra/lc1:succeeded'],
    'the canary was patched then rolled back; the second host got nothing',
  );
  const raRuns = listRuns(agents[0]!.f.t.app.db);
  assert.equal(raRuns.length, 1, 'one patch run on the canary host, rolled back (not a second run)');
  assert.equal(raRuns[0]?.state, 'rolled-back');
  assert.equal(listRuns(agents[1]!.f.t.app.db).length, 0, 'nothing ran on the second host');
  const health = await healthOf();
  assert.ok(
    health.some((h) => !h.healthy && h.status === 503),
    `the agent reported the 503: ${JSON.stringify(health)}`,
  );

  // The original serves again, unpatched; 0 failed requests on both addresses throughout.
  const versions = await Promise.all(agents.map((a) => a.f.get('/version')));
  assert.deepEqual(
    versions.map((v) => `${v.servedBy}:${v.version}`),
    ['lc1:1.0.0', 'lc1:1.0.0'],
  );
  for (const [i, a] of agents.entries()) {
    const summary = reports[i]?.summary;
    assert.ok((summary?.total ?? 0) > 100, `${a.host}: ${summary?.total} requests`);
    assert.equal(summary?.failed, 0, `${a.host}: failed requests ${JSON.stringify(summary?.byOutcome)}`);
  }
});
