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
import { sleep, spawnProcess, waitFor, type SpawnedProcess } from '../../../src/core/index.ts';
import { assetsDir } from '../../../src/images/index.ts';
import { listRuns } from '../../../src/run/index.ts';
import {
  createEnrolToken,
  createRollout,
  getRollout,
  startCluster,
  startControlWorker,
  startEnrolServer,
  stopCluster,
  syncInventory,
} from '../../../src/fleet/index.ts';
import type { ClientLoad, ClientLoadReport } from '../../../src/demo/index.ts';
import { createControlNetwork, startFleetDb } from '../../helpers/fleet-fixture.ts';
import { createRunFixture, type RunFixture } from '../run/run-fixture.ts';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const cliEntry = path.join(repoRoot, 'src/cli/entry.ts');

interface Agent {
  host: string;
  f: RunFixture;
  proc?: SpawnedProcess;
  log: string[];
  load?: ClientLoad;
}

test('real LCs: PostgreSQL restarted while a wave is patched; agents reconnect, each run once, 0 failed requests', async (t) => {
  const agents: Agent[] = [];
  // Registered first so it runs first: agents end (their runs finish), loads stop, hosts go.
  t.after(async () => {
    for (const a of agents) {
      if (!a.proc || a.proc.child.exitCode !== null) continue;
      a.proc.child.kill('SIGTERM');
      const ended = await Promise.race([a.proc.done.then(() => true), sleep(120_000).then(() => false)]);
      if (!ended) a.proc.child.kill('SIGKILL');
    }
    for (const a of agents) await a.load?.stop().catch(() => undefined);
    for (const a of agents) await a.f.dispose().catch((e: unknown) => console.error(e));
  });
  const net = await createControlNetwork();
  const fx = await startFleetDb(t, { network: net });
  const enrol = await startEnrolServer({
    db: fx.db,
    ca: fx.ca,
    host: net.address,
    database: { host: fx.endpoint.host, port: fx.endpoint.port, database: fx.endpoint.database },
    tlsDir: path.join(fx.dir, 'enrol-tls'),
  });
  fx.defer(() => enrol.close());

  for (const host of ['ra', 'rb', 'rc']) {
    const f = await createRunFixture();
    agents.push({ host, f, log: [] });
    await f.addVersionPatch();
    const token = await createEnrolToken(fx.db, { host });
    await f.t.cli(['agent', 'enrol', host, token, '--url', enrol.url, '--ca', fx.ca.certFile]);
  }
  for (const a of agents) {
    a.proc = spawnProcess(
      [
        process.execPath,
        '--import',
        'tsx',
        cliEntry,
        '--state-dir',
        a.f.t.stateDir,
        'agent',
        'run',
        '--poll',
        '500',
        '--group',
        'web',
        '--scan-database',
        path.join(assetsDir, 'clamav/eicar-test.hdb'),
      ],
      { cwd: repoRoot },
    );
    a.proc.child.stderr?.on('data', (c: Buffer) => a.log.push(...c.toString('utf8').split('\n')));
  }
  const diagnose = (): string =>
    agents.map((a) => `--- ${a.host}\n${a.log.filter(Boolean).slice(-30).join('\n')}`).join('\n');

  const known = await waitFor(async () => ((await syncInventory(fx.db)) >= 3 ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 500,
  });
  assert.ok(known, `the three agents reported their inventory\n${diagnose()}`);

  for (const a of agents) a.load = await a.f.load(100);
  const worker = await startControlWorker({ db: fx.db, tickMs: 500, pollIntervalMs: 200 });
  fx.defer(() => worker.stop());
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
  const reports: ClientLoadReport[] = [];
  for (const a of agents) reports.push(await (a.load as ClientLoad).stop());
  for (const a of agents) a.load = undefined;

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
