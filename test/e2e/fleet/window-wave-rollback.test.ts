/**
 * A maintenance window and a wave rollback on real LCs. The control plane (PostgreSQL 15 with TLS,
 * graphile-worker, the HTTPS enrolment endpoint) on an address in 198.18.0.0/15; two hosts on this
 * machine, each with its own state directory, pools, bridge, LC pair (busybox image, namespace
 * driver) and client, enrolled with `understudy agent enrol` and running `understudy agent run` as
 * child processes.
 *
 * The rollout's group may only be patched in a window (Asia/Tokyo time) that opens a minute or two
 * after the rollout is made: until then nothing is dispatched and both hosts keep serving 1.0.0; at
 * the opening the canary is patched, then the second wave, and the rollout completes. Its second
 * wave is then rolled back (after the end): that host's own run is rolled back (1.0.0 served by LC1
 * again), the canary keeps 1.0.1, the rollout's record shows the operator's rollback, and a real load
 * on each served address has 0 failed requests throughout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { listRuns } from '../../../src/run/index.ts';
import { getRollout, rolloutDetail, rolloutSteering } from '../../../src/fleet/index.ts';
import { startRealFleet } from './real-fleet.ts';

/** Wall-clock HH:MM in Tokyo (UTC+9, no daylight saving time) at `at`. */
const tokyoHhmm = (at: Date): string => {
  const d = new Date(at.getTime() + 9 * 3600_000);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
};

test('real LCs: a closed maintenance window holds the rollout until it opens; a completed wave is rolled back; 0 failed requests', async (t) => {
  const fleet = await startRealFleet(t, { hosts: ['wa', 'wb'] });
  const { fx, agents, worker, diagnose } = fleet;
  const steering = rolloutSteering({ db: fx.db, jobs: worker, via: 'cli' });

  // The window opens at the start of a minute at least 30 s away (Tokyo wall clock), for 30 minutes.
  const made = new Date();
  const opening = new Date(Math.ceil((made.getTime() + 30_000) / 60_000) * 60_000);
  const rollout = await steering.create(
    {
      name: 'demo fix in the Tokyo window',
      patches: { securityOnly: true },
      targets: { groups: ['web'] },
      windows: { web: [{ timeZone: 'Asia/Tokyo', start: tokyoHhmm(opening), durationMinutes: 30 }] },
      canary: 1,
      maxConcurrency: 1,
      maxErrors: 0,
      watchSeconds: 3,
    },
    'ops',
  );
  assert.equal(rollout.state, 'running');
  assert.deepEqual(
    rollout.wavesDetail.map((w) => w.targets.map((x) => `${x.host}/${x.lc}`)),
    [['wa/lc1'], ['wb/lc1']],
  );

  // Closed: nothing dispatched until the opening, both hosts serve 1.0.0.
  const workRows = async () =>
    (
      await fx.db.query<{ kind: string; host_id: string; state: string; created_at: Date }>(
        `SELECT kind, host_id, state, created_at FROM fleet.work WHERE rollout_id = $1 ORDER BY id`,
        [rollout.id],
      )
    ).rows;
  while (Date.now() < opening.getTime() - 2_000) {
    assert.deepEqual(await workRows(), [], 'nothing is dispatched while the window is closed');
    await sleep(1_000);
  }
  for (const a of agents) assert.equal((await a.f.get('/version')).version, '1.0.0');

  const completed = await waitFor(
    async () => {
      const r = await getRollout(fx.db, rollout.id);
      return r.state === 'completed' || r.state === 'halted' ? r : undefined;
    },
    { timeoutMs: 600_000, intervalMs: 500 },
  );
  assert.equal(completed?.state, 'completed', `the rollout completed\n${diagnose()}`);
  const dispatched = await workRows();
  assert.deepEqual(
    dispatched.map((w) => `${w.kind}:${w.host_id}:${w.state}`),
    ['patch:wa:succeeded', 'patch:wb:succeeded'],
  );
  for (const w of dispatched)
    assert.ok(
      w.created_at.getTime() >= opening.getTime(),
      `dispatched at ${w.created_at.toISOString()}, the window opened at ${opening.toISOString()}`,
    );
  const patched = await Promise.all(agents.map((a) => a.f.get('/version')));
  assert.deepEqual(
    patched.map((v) => `${v.servedBy}:${v.version}`),
    ['lc2:1.0.1', 'lc2:1.0.1'],
  );

  // The second wave rolled back after the end: wb's own run goes back to LC1 (1.0.0).
  const back = await steering.rollbackWave(rollout.id, 2, 'ops');
  assert.equal(back.rollingBack, 1);
  const reverted = await waitFor(
    async () => {
      const rows = await workRows();
      return rows.some((w) => w.kind === 'rollback' && w.state === 'succeeded') ? rows : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 500 },
  );
  assert.ok(reverted, `the second wave was rolled back\n${diagnose()}`);
  await sleep(1500); // the loads keep going over the rollback
  const reports = await fleet.stopLoads();

  assert.deepEqual(
    reverted.map((w) => `${w.kind}:${w.host_id}:${w.state}`),
    ['patch:wa:succeeded', 'patch:wb:reverted', 'rollback:wb:succeeded'],
  );
  const wbRuns = listRuns(agents[1]!.f.t.app.db);
  assert.equal(wbRuns.length, 1, 'one patch run on wb, rolled back (not a second run)');
  assert.equal(wbRuns[0]?.state, 'rolled-back');
  assert.equal(listRuns(agents[0]!.f.t.app.db)[0]?.state, 'switched');
  const versions = await Promise.all(agents.map((a) => a.f.get('/version')));
  assert.deepEqual(
    versions.map((v) => `${v.servedBy}:${v.version}`),
    ['lc2:1.0.1', 'lc1:1.0.0'],
  );
  const detail = await rolloutDetail(fx.db, rollout.id);
  assert.equal(detail.state, 'completed');
  assert.deepEqual(
    detail.wavesDetail.map((w) => `${w.name}:${w.state}:${w.targets[0]?.rollback ?? ''}`),
    ['canary:done:', 'wave 2:failed:succeeded'],
  );
  assert.deepEqual(
    detail.history.map((h) => `${h.actor}:${h.action}:${h.outcome}`),
    ['ops:rollout.create:allowed', 'ops:rollout.rollback-wave:allowed'],
  );
  for (const [i, a] of agents.entries()) {
    const summary = reports[i]?.summary;
    assert.ok((summary?.total ?? 0) > 100, `${a.host}: ${summary?.total} requests`);
    assert.equal(summary?.failed, 0, `${a.host}: failed requests ${JSON.stringify(summary?.byOutcome)}`);
  }
});
