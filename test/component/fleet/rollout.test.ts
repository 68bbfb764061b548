// Rollouts through a real PostgreSQL 15 and graphile-worker, with three agents on this machine
// whose host runner is a fake (no LCs): canary first, waves gated by health watch, a closed
// maintenance window keeps the rollout waiting, a failure in wave 2 halts it at max errors, and
// a PostgreSQL restart mid-rollout runs nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { openStore } from '../../../src/store/index.ts';
import {
  agentJournalSchema,
  FakeHostRunner,
  commandRollout,
  rollbackWave,
  complianceCsv,
  groupCompliance,
  lcCompliance,
  FleetAgent,
  createRollout,
  getRollout,
  startCluster,
  startControlWorker,
  stopCluster,
  syncInventory,
  type Clock,
  type LcInventory,
} from '../../../src/fleet/index.ts';
import { startFleetDb, type FleetDb } from '../../helpers/fleet-fixture.ts';

const hosts = ['h1', 'h2', 'h3'];

function lcsOf(host: string): LcInventory[] {
  return ['lc-a', 'lc-b'].map((lc) => ({
    lc,
    group: 'web',
    labels: { env: 'prod' },
    services: ['http'],
    installed: [{ name: 'openssl', version: '3.0.14' }],
    pending: [
      { name: `openssl-3.0.15`, security: true },
      { name: 'vim-9.1', security: false },
    ],
    lastRun: { at: '2026-01-01T00:00:00Z', result: `ok on ${host}` },
  }));
}

async function startFleet(
  t: { after: (fn: () => unknown) => void },
  options: {
    runMs?: number;
    failing?: Record<string, string[]>;
    unhealthy?: Record<string, string[]>;
    clock?: Clock;
  } = {},
) {
  const fx = await startFleetDb(t);
  const agents: FleetAgent[] = [];
  const runners = new Map<string, FakeHostRunner>();
  const errors: unknown[] = [];
  for (const host of hosts) {
    const identity = await fx.enrolAgent(host);
    const runner = new FakeHostRunner({
      lcs: lcsOf(host),
      runMs: options.runMs ?? 50,
      failing: new Set(options.failing?.[host] ?? []),
      unhealthy: new Set(options.unhealthy?.[host] ?? []),
    });
    runners.set(host, runner);
    const agent = new FleetAgent({
      host,
      endpoint: fx.endpoint,
      identity,
      journal: openStore(path.join(fx.dir, 'agents', host, 'journal.db'), [agentJournalSchema]),
      runner,
      maxParallel: 2,
      pollMs: 150,
      onError: (e) => errors.push(e),
    });
    await agent.reportInventory();
    agents.push(agent);
  }
  await syncInventory(fx.db);
  const worker = await startControlWorker({
    db: fx.db,
    tickMs: 200,
    pollIntervalMs: 200,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  fx.defer(async () => {
    for (const a of agents) await a.stop();
    await worker.stop();
  });
  for (const a of agents) a.start();
  return { fx, agents, runners, worker, errors };
}

async function workRows(fx: FleetDb, rolloutId: number) {
  return (
    await fx.db.query<{
      host_id: string;
      lc: string;
      wave: number;
      state: string;
      created_at: Date;
      finished_at: Date | null;
    }>(
      `SELECT host_id, lc, wave, state, created_at, finished_at FROM fleet.work WHERE rollout_id = $1 AND kind = 'patch' ORDER BY wave, host_id, lc`,
      [rolloutId],
    )
  ).rows;
}

async function untilState(fx: FleetDb, id: number, states: string[], timeoutMs = 60_000) {
  const reached = await waitFor(
    async () => {
      const r = await getRollout(fx.db, id);
      return states.includes(r.state) ? r : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
  assert.ok(
    reached,
    `rollout ${id} did not reach ${states.join('/')} (is ${(await getRollout(fx.db, id)).state})`,
  );
  return reached;
}

test('six LCs on three agents: a canary, then waves after a green watch; a failure in wave 2 halts at max errors', async (t) => {
  const { fx, runners, worker } = await startFleet(t, { failing: { h2: ['lc-a'] } });
  const rollout = await createRollout(
    fx.db,
    {
      name: 'security',
      patches: { securityOnly: true },
      canary: 1,
      maxConcurrency: 2,
      maxErrors: 0,
      watchSeconds: 1,
    },
    new Date(),
  );
  assert.deepEqual(rollout.patchSet, ['openssl-3.0.15']);
  assert.deepEqual(
    rollout.waves.map((w) => w.length),
    [1, 2, 2, 1],
  );
  await worker.kick(rollout.id);
  const halted = await untilState(fx, rollout.id, ['halted', 'completed']);
  assert.equal(halted.state, 'halted');
  assert.match(halted.reason ?? '', /wave 2: 1 failures > max errors 0/);
  const rows = await workRows(fx, rollout.id);
  assert.deepEqual(
    rows.map((r) => `${r.wave}:${r.host_id}/${r.lc}:${r.state}`),
    ['0:h1/lc-a:succeeded', '1:h1/lc-b:succeeded', '1:h2/lc-a:failed'],
  );
  // wave 2 started only after the canary had been green for the watch time
  const canaryDone = rows[0]?.finished_at?.getTime() ?? 0;
  assert.ok((rows[1]?.created_at.getTime() ?? 0) >= canaryDone + 1000, 'wave 2 waited for the canary watch');
  // nothing of waves 3 and 4 was dispatched, and nothing ran twice
  await sleep(1000);
  assert.equal((await workRows(fx, rollout.id)).length, 3);
  const starts = [...runners.values()].flatMap((r) => [...r.starts.values()]);
  assert.deepEqual(starts, [1, 1, 1]);
  // the failure is reported as an event by the agent of h2
  const events = await fx.db.query<{ host_id: string; type: string }>(
    `SELECT host_id, body->>'type' AS type FROM fleet.reports ORDER BY id`,
  );
  assert.ok(events.rows.some((e) => e.host_id === 'h2' && e.type === 'patch-failed'));

  // compliance per LC and per group, as JSON and CSV
  const lcs = await lcCompliance(fx.db, new Date(Date.now() + 3 * 24 * 3600_000));
  const byKey = new Map(lcs.map((l) => [`${l.host}/${l.lc}`, l]));
  assert.equal(lcs.length, 6);
  assert.equal(byKey.get('h2/lc-a')?.lastRunResult, 'failed');
  assert.equal(byKey.get('h1/lc-a')?.lastRunResult, 'succeeded');
  assert.ok((byKey.get('h1/lc-a')?.daysSinceLastPatch ?? -1) >= 2.9);
  assert.equal(byKey.get('h3/lc-b')?.daysSinceLastPatch, null);
  assert.deepEqual(
    byKey.get('h3/lc-b')?.pendingSecurity.map((p) => p.name),
    ['openssl-3.0.15'],
  );
  assert.ok((byKey.get('h3/lc-b')?.pendingSecurity[0]?.ageDays ?? 0) >= 2.9);
  const [web] = groupCompliance(lcs);
  assert.equal(web?.group, 'web');
  assert.equal(web?.lcs, 6);
  assert.equal(web?.lcsLastRunFailed, 1);
  const csv = complianceCsv(lcs).split('\n');
  assert.equal(
    csv[0],
    'host,lc,group,pending_security,oldest_pending_days,last_run_at,last_run_result,days_since_last_patch,last_health,last_health_at',
  );
  // the agents reported the health of the switched LCs during the watch
  assert.equal(byKey.get('h1/lc-a')?.lastHealth?.healthy, true);
  assert.equal(byKey.get('h2/lc-a')?.lastHealth, null, 'a failed run has no switched service to watch');
  assert.match(csv.find((l) => l.startsWith('h1,lc-a,')) ?? '', /,healthy,/);
  assert.match(csv.find((l) => l.startsWith('h2,lc-a,')) ?? '', /,failed,/);
});

test('a closed maintenance window keeps the rollout waiting until it opens', async (t) => {
  // The control plane's clock runs with real time plus an offset the test moves forward; the
  // window opens two hours from now, in Tokyo local time.
  let offsetMs = 0;
  const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
  const opens = new Date(Date.now() + 2 * 3600_000);
  const start = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Asia/Tokyo',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(opens);
  const { fx, worker } = await startFleet(t, { clock });
  const rollout = await createRollout(
    fx.db,
    {
      name: 'nightly',
      canary: 1,
      maxConcurrency: '50%',
      watchSeconds: 0,
      windows: { web: [{ timeZone: 'Asia/Tokyo', start, durationMinutes: 60 }] },
    },
    clock.now(),
  );
  await worker.kick(rollout.id);
  await sleep(2000);
  assert.equal((await workRows(fx, rollout.id)).length, 0, 'nothing dispatched while the window is closed');
  assert.equal((await getRollout(fx.db, rollout.id)).state, 'running');
  offsetMs = opens.getTime() - Date.now() + 60_000;
  const done = await untilState(fx, rollout.id, ['completed', 'halted']);
  assert.equal(done.state, 'completed');
  assert.equal((await workRows(fx, rollout.id)).filter((r) => r.state === 'succeeded').length, 6);
});

test('PostgreSQL restarted mid-rollout: agents reconnect, runs finish locally, nothing runs twice', async (t) => {
  const { fx, runners, agents, worker } = await startFleet(t, { runMs: 1500 });
  const rollout = await createRollout(
    fx.db,
    { name: 'restart', canary: 1, maxConcurrency: 3, watchSeconds: 0 },
    new Date(),
  );
  await worker.kick(rollout.id);
  const running = await waitFor(
    async () =>
      (await workRows(fx, rollout.id)).some((r) => r.wave === 1 && r.state === 'running') ? true : undefined,
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  assert.ok(running, 'wave 2 started');
  await stopCluster(fx.cluster);
  // the runs in progress finish on their hosts while the control plane is down
  await waitFor(() => (agents.every((a) => a.inProgress() === 0) ? true : undefined), { timeoutMs: 20_000 });
  await startCluster(fx.cluster);
  const done = await untilState(fx, rollout.id, ['completed', 'halted'], 90_000);
  assert.equal(done.state, 'completed');
  const rows = await workRows(fx, rollout.id);
  assert.equal(rows.length, 6);
  assert.ok(rows.every((r) => r.state === 'succeeded'));
  const starts = [...runners.values()].flatMap((r) => [...r.starts.values()]);
  assert.equal(starts.length, 6);
  assert.ok(
    starts.every((n) => n === 1),
    `runs per work item: ${starts.join(',')}`,
  );
  for (const a of agents) assert.equal(a.journal.inState('finished').length, 0, 'every outcome was reported');
});

test('the scheduler codes a dropped connection as retryable, and its pool reconnects', async (t) => {
  const fx = await startFleetDb(t);
  const worker = await startControlWorker({ db: fx.db, tickMs: 200, pollIntervalMs: 200 });
  fx.defer(() => worker.stop());
  // A connection cut under a query rejects in pg without a code; graphile-worker retries (and
  // does not leave unhandled) only coded errors.
  const dropped = await worker.utils
    .withPgClient(async (client) => {
      const query = client.query('SELECT pg_sleep(5)');
      // The TCP socket under the TLS one, as when the server vanishes mid-query.
      const tls = (client as unknown as { connection: { stream: { _parent: { destroy(): void } } } })
        .connection.stream;
      setTimeout(() => tls._parent.destroy(), 200);
      return query;
    })
    .then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
  assert.ok(dropped, 'the query on a cut connection was refused');
  assert.match(dropped.message, /Connection terminated|connection error|not queryable/);
  assert.equal(dropped.code, '08006');
  for (let i = 0; i < 3; i++) {
    const after = await worker.utils.withPgClient((client) => client.query('SELECT 1 AS one'));
    assert.equal(after.rows[0].one, 1, 'the pool of the scheduler works after the cut');
  }
});

test('roll back a whole wave, pause, stop: agents revert the switched LCs, nothing more is dispatched', async (t) => {
  const { fx, worker, runners } = await startFleet(t);
  const rollout = await createRollout(
    fx.db,
    { name: 'back', canary: 2, maxConcurrency: 2, watchSeconds: 3600 },
    new Date(),
  );
  await worker.kick(rollout.id);
  const canaryDone = await waitFor(
    async () =>
      (await workRows(fx, rollout.id)).filter((r) => r.state === 'succeeded').length === 2 ? true : undefined,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  assert.ok(canaryDone, 'the canary wave switched');
  assert.equal(await rollbackWave(fx.db, worker.queue, rollout.id, 0, new Date()), 2);
  assert.equal((await getRollout(fx.db, rollout.id)).state, 'paused');
  const reverted = await waitFor(
    async () =>
      (await workRows(fx, rollout.id)).filter((r) => r.state === 'reverted').length === 2 ? true : undefined,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  assert.ok(reverted, 'both LCs of the wave were rolled back by their agents');
  const rollbacks = await fx.db.query(
    `SELECT 1 FROM fleet.work WHERE rollout_id = $1 AND kind = 'rollback' AND state = 'succeeded'`,
    [rollout.id],
  );
  assert.equal(rollbacks.rowCount, 2);
  assert.equal(await commandRollout(fx.db, rollout.id, 'stop', new Date()), 'stopped');
  await assert.rejects(
    commandRollout(fx.db, rollout.id, 'resume', new Date()),
    /cannot resume a rollout that is stopped/,
  );
  await sleep(1000);
  assert.equal(
    (await workRows(fx, rollout.id)).length,
    2,
    'nothing after the rolled-back wave was dispatched',
  );
  const starts = [...runners.values()].flatMap((r) => [...r.starts.values()]);
  assert.deepEqual(starts, [1, 1, 1, 1]);
});

test('health reports during the watch: a switched LC reported unhealthy counts as a failure, is rolled back, and halts the rollout', async (t) => {
  const { fx, worker, runners } = await startFleet(t, { unhealthy: { h1: ['lc-a'] } });
  const rollout = await createRollout(
    fx.db,
    { name: 'watched', canary: 1, maxConcurrency: 2, maxErrors: 0, watchSeconds: 3 },
    new Date(),
  );
  await worker.kick(rollout.id);
  const halted = await untilState(fx, rollout.id, ['halted', 'completed']);
  assert.equal(halted.state, 'halted');
  assert.match(halted.reason ?? '', /wave 1: 1 failures > max errors 0/);
  // the canary switched (its run succeeded) but its service is unhealthy: it is rolled back to its
  // original (the patch work becomes reverted) and nothing more is dispatched
  const reverted = await waitFor(
    async () => {
      const rows = await workRows(fx, rollout.id);
      return rows[0]?.state === 'reverted' ? rows : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  assert.ok(reverted, 'the unhealthy canary was rolled back');
  await sleep(1000);
  assert.deepEqual(
    (await workRows(fx, rollout.id)).map((r) => `${r.wave}:${r.host_id}/${r.lc}:${r.state}`),
    ['0:h1/lc-a:reverted'],
  );
  const rollbacks = await fx.db.query<{ host_id: string; lc: string; state: string }>(
    `SELECT host_id, lc, state FROM fleet.work WHERE rollout_id = $1 AND kind = 'rollback'`,
    [rollout.id],
  );
  assert.deepEqual(rollbacks.rows, [{ host_id: 'h1', lc: 'lc-a', state: 'succeeded' }]);
  // one patch run and one rollback on h1, each started once
  assert.deepEqual([...(runners.get('h1')?.starts.values() ?? [])], [1, 1]);
  const health = await fx.db.query<{ host_id: string; healthy: boolean; lc: string }>(
    `SELECT host_id, (body->>'healthy')::boolean AS healthy, body->>'lc' AS lc FROM fleet.reports WHERE kind = 'health'`,
  );
  assert.ok(health.rows.length >= 1);
  assert.ok(health.rows.every((r) => r.host_id === 'h1' && r.lc === 'lc-a' && !r.healthy));
  const lcs = await lcCompliance(fx.db);
  assert.equal(lcs.find((l) => l.host === 'h1' && l.lc === 'lc-a')?.lastHealth?.healthy, false);
  assert.equal(groupCompliance(lcs)[0]?.lcsUnhealthy, 1);
});
