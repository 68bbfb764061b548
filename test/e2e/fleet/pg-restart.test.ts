/**
 * PostgreSQL restarted in the middle of a rollout over real LCs. The control plane (PostgreSQL 15
 * with TLS, graphile-worker, the HTTPS enrolment endpoint) on an address in 198.18.0.0/15; three
 * hosts on this machine, each with its own state directory, pools, bridge, LC pair (busybox image,
 * namespace driver) and client, enrolled with `understudy agent enrol` and running `understudy agent
 * run` as child processes.
 *
 * Canary on the first host, then a wave of two. While the second wave's runs are in progress the
 * server is shut down at once (immediate shutdown, as after a crash); the hosts finish their runs
 * without it, then it is started again on the same data directory and port and recovers. The agents reconnect and report, the rollout completes, each host ran its
 * patch exactly once (its local store and the control plane's work rows agree), and a real load on
 * each served address has 0 failed requests throughout.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { listRuns } from '../../../src/run/index.ts';
import { createRollout, getRollout, startCluster, stopCluster } from '../../../src/fleet/index.ts';
import { startRealFleet } from './real-fleet.ts';

test('real LCs: PostgreSQL restarted while a wave is patched; agents reconnect, each run once, 0 failed requests', async (t) => {
  const fleet = await startRealFleet(t, { hosts: ['ra', 'rb', 'rc'] });
  const { fx, agents, worker, diagnose } = fleet;
  const rollout = await createRollout(
    fx.db,
    {
      name: 'fix over a restart',
      patches: { securityOnly: true },
      targets: { groups: ['web'] },
      canary: 1,
      maxConcurrency: 2,
      maxErrors: 0,
      watchSeconds: 2,
    },
    new Date(),
  );
  assert.deepEqual(
    rollout.waves.map((w) => w.map((x) => `${x.host}/${x.lc}`)),
    [['ra/lc1'], ['rb/lc1', 'rc/lc1']],
  );
  await worker.kick(rollout.id);

  // The second wave's runs are in progress on their hosts (local store) when the server stops.
  const waveHosts = agents.slice(1);
  const inProgress = await waitFor(
    () => (waveHosts.every((a) => listRuns(a.f.t.app.db)[0]?.state === 'running') ? true : undefined),
    { timeoutMs: 300_000, intervalMs: 100 },
  );
  assert.ok(inProgress, `the second wave is being patched\n${diagnose()}`);
  const stoppedAt = Date.now();
  // Immediate shutdown (SIGQUIT at once, as after a crash): the next start recovers from the WAL.
  await stopCluster(fx.cluster, 0);
  // Without the control plane the hosts finish their runs.
  const finished = await waitFor(
    () => (waveHosts.every((a) => listRuns(a.f.t.app.db)[0]?.state === 'switched') ? true : undefined),
    { timeoutMs: 180_000, intervalMs: 200 },
  );
  assert.ok(finished, `the second wave's runs finished with the control plane down\n${diagnose()}`);
  await sleep(2000); // the agents' reports and polls fail meanwhile
  await startCluster(fx.cluster);
  const restartedAt = new Date();
  console.log(`PostgreSQL down for ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s`);

  const ended = await waitFor(
    async () => {
      const r = await getRollout(fx.db, rollout.id);
      return r.state === 'completed' || r.state === 'halted' ? r : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
  assert.equal(ended?.state, 'completed', `the rollout completed\n${diagnose()}`);
  await sleep(1500); // the loads keep going over the end of the rollout
  const reports = await fleet.stopLoads();

  // The server recovered from its WAL at the start (written by its logging collector).
  assert.match(
    fs
      .readdirSync(path.join(fx.cluster.dataDir, 'log'))
      .map((f) => fs.readFileSync(path.join(fx.cluster.dataDir, 'log', f), 'utf8'))
      .join(''),
    /not properly shut down; automatic recovery in progress/,
  );
  // Every agent came back: its heartbeat is after the restart.
  const seen = await fx.db.query<{ id: string; last_seen: Date }>(
    `SELECT id, last_seen FROM fleet.hosts ORDER BY id`,
  );
  for (const h of seen.rows)
    assert.ok(h.last_seen.getTime() >= restartedAt.getTime(), `${h.id} polled again after the restart`);

  // One patch work row per LC, one run per host, and they agree.
  const work = await fx.db.query<{
    host_id: string;
    kind: string;
    state: string;
    result: Record<string, unknown>;
  }>(`SELECT host_id, kind, state, result FROM fleet.work WHERE rollout_id = $1 ORDER BY host_id`, [
    rollout.id,
  ]);
  assert.deepEqual(
    work.rows.map((w) => `${w.kind}:${w.host_id}:${w.state}`),
    ['patch:ra:succeeded', 'patch:rb:succeeded', 'patch:rc:succeeded'],
  );
  for (const [i, a] of agents.entries()) {
    const runs = listRuns(a.f.t.app.db);
    assert.equal(runs.length, 1, `${a.host}: one patch run, not a second`);
    assert.equal(runs[0]?.state, 'switched');
    assert.equal(work.rows[i]?.result.runId, runs[0]?.id);
  }
  const versions = await Promise.all(agents.map((a) => a.f.get('/version')));
  assert.deepEqual(
    versions.map((v) => `${v.servedBy}:${v.version}`),
    ['lc2:1.0.1', 'lc2:1.0.1', 'lc2:1.0.1'],
  );
  for (const [i, a] of agents.entries()) {
    const summary = reports[i]?.summary;
    assert.ok((summary?.total ?? 0) > 100, `${a.host}: ${summary?.total} requests`);
    assert.equal(summary?.failed, 0, `${a.host}: failed requests ${JSON.stringify(summary?.byOutcome)}`);
  }
});
