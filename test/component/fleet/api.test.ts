// The fleet in the daemon's API and console, over a real PostgreSQL 15 (TLS) with two agents (fake
// host runner) that really ran a rollout: the routes need a token, show the rollout's state and
// reason, each wave's state and each target's work, and the hosts' heartbeats; the console's /fleet
// pages show the same to a signed-in operator and send anyone else to the sign-in page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { silentLogger, waitFor } from '../../../src/core/index.ts';
import { buildApi, createApiToken } from '../../../src/api/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import {
  createRollout,
  fleetReader,
  getRollout,
  startControlWorker,
  syncInventory,
} from '../../../src/fleet/index.ts';
import { createFakeAgents, startFleetDb } from '../../helpers/fleet-fixture.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

const squash = (s: string): string => s.replace(/\s+/g, ' ').replace(/>\s+/g, '>').replace(/\s+</g, '<');

test('fleet API and console pages: rollouts, waves, hosts and their states, behind the API token', async (t) => {
  const fx = await startFleetDb(t);
  const agents = await createFakeAgents(fx, {
    hosts: ['fh1', 'fh2'],
    pollMs: 150,
    failing: { fh2: ['lc-a'] },
  });
  await syncInventory(fx.db);
  const worker = await startControlWorker({ db: fx.db, tickMs: 200, pollIntervalMs: 200 });
  fx.defer(() => worker.stop());
  for (const a of agents) a.start();
  // Waves: canary fh1/lc-a; fh1/lc-b + fh2/lc-a (fails: halt at max errors 0); fh2/lc-b never.
  const rollout = await createRollout(
    fx.db,
    { name: 'openssl', canary: 1, maxConcurrency: 2, maxErrors: 0, watchSeconds: 0.5 },
    new Date(),
  );
  await worker.kick(rollout.id);
  const halted = await waitFor(
    async () => ((await getRollout(fx.db, rollout.id)).state === 'halted' ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  assert.ok(halted, 'the rollout halted');
  const settled = await waitFor(
    async () => {
      const open = await fx.db.query(
        `SELECT 1 FROM fleet.work WHERE state IN ('queued','claimed','running')`,
      );
      return open.rowCount === 0 ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  assert.ok(settled, 'the work taken before the halt finished');

  // The daemon's API with the fleet reader.
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fleet-api-'));
  const config = resolveMonitorConfig({}, stateDir);
  const { db, catalogue } = openMonitorStore(stateDir);
  const monitor = createMonitor({
    db,
    catalogue,
    config,
    stateDir,
    fetcher: realFetcher,
    managedLcs: { list: async () => [], installedPackages: async () => new Map() },
    logger: silentLogger,
  });
  const app = buildApi({ db, catalogue, monitor, config, logger: silentLogger, fleet: fleetReader(fx.db) });
  t.after(async () => {
    await app.close();
    db.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  const reader = createApiToken(db, { operator: 'rick', scope: 'read' }).token;
  const auth = { authorization: `Bearer ${reader}` };

  for (const url of ['/v1/fleet/rollouts', `/v1/fleet/rollouts/${rollout.id}`, '/v1/fleet/hosts']) {
    const anonymous = await app.inject({ url });
    assert.equal(anonymous.statusCode, 401, url);
    const wrong = await app.inject({
      url,
      headers: { authorization: `Bearer us_${randomBytes(8).toString('hex')}` },
    });
    assert.equal(wrong.statusCode, 401, url);
  }

  const list = (await app.inject({ url: '/v1/fleet/rollouts', headers: auth })).json() as {
    rollouts: { id: number; state: string; reason: string; waves: number; targets: number; work: object }[];
  };
  assert.equal(list.rollouts.length, 1);
  const [summary] = list.rollouts;
  assert.equal(summary?.id, rollout.id);
  assert.equal(summary?.state, 'halted');
  assert.match(summary?.reason ?? '', /wave 2: 1 failures > max errors 0/);
  assert.deepEqual([summary?.waves, summary?.targets], [3, 4]);
  // fh1/lc-b of wave 2 may have finished or have been cancelled before it was taken
  const work = summary?.work as Record<string, number>;
  assert.equal(work.failed, 1);
  assert.equal((work.succeeded ?? 0) + (work.cancelled ?? 0), 2);

  const detail = (await app.inject({ url: `/v1/fleet/rollouts/${rollout.id}`, headers: auth })).json() as {
    rollout: {
      patchSet: string[];
      wavesDetail: {
        name: string;
        state: string;
        targets: { host: string; lc: string; state: string | null }[];
      }[];
    };
  };
  assert.deepEqual(detail.rollout.patchSet, ['openssl-3.0.15']);
  assert.deepEqual(
    detail.rollout.wavesDetail.map((w) => `${w.name}:${w.state}`),
    ['canary:done', 'wave 2:failed', 'wave 3:pending'],
  );
  assert.deepEqual(
    detail.rollout.wavesDetail[0]?.targets.map((x) => `${x.host}/${x.lc}:${x.state}`),
    ['fh1/lc-a:succeeded'],
  );
  assert.equal(detail.rollout.wavesDetail[1]?.targets.find((x) => x.host === 'fh2')?.state, 'failed');
  assert.deepEqual(
    detail.rollout.wavesDetail[2]?.targets.map((x) => x.state),
    [null],
  );

  const missing = await app.inject({ url: '/v1/fleet/rollouts/999999', headers: auth });
  assert.equal(missing.statusCode, 404);
  assert.equal((missing.json() as { code: string }).code, 'FLEET_NOT_FOUND');

  const hosts = (await app.inject({ url: '/v1/fleet/hosts', headers: auth })).json() as {
    hosts: { id: string; lcs: number; lastSeen: string | null; openWork: number }[];
  };
  assert.deepEqual(
    hosts.hosts.map((h) => `${h.id}:${h.lcs}:${h.openWork}`),
    ['fh1:2:0', 'fh2:2:0'],
  );
  for (const h of hosts.hosts) assert.ok(h.lastSeen && Date.now() - Date.parse(h.lastSeen) < 60_000, h.id);

  // Compliance from what the agents reported and what the rollout did, as JSON and CSV.
  const compliance = (await app.inject({ url: '/v1/fleet/compliance', headers: auth })).json() as {
    lcs: { host: string; lc: string; lastRunResult: string | null; pendingSecurity: { name: string }[] }[];
    groups: { group: string; lcs: number; lcsLastRunFailed: number }[];
  };
  const byLc = new Map(compliance.lcs.map((c) => [`${c.host}/${c.lc}`, c]));
  assert.equal(byLc.get('fh1/lc-a')?.lastRunResult, 'succeeded');
  assert.equal(byLc.get('fh2/lc-a')?.lastRunResult, 'failed');
  assert.deepEqual(
    byLc.get('fh2/lc-b')?.pendingSecurity.map((p) => p.name),
    ['openssl-3.0.15'],
  );
  assert.equal(byLc.get('fh2/lc-b')?.lastRunResult, null);
  assert.deepEqual(
    compliance.groups.map((g) => `${g.group}:${g.lcs}:${g.lcsLastRunFailed}`),
    ['web:4:1'],
  );
  const csv = await app.inject({ url: '/v1/fleet/compliance?format=csv&by=group', headers: auth });
  assert.equal(csv.statusCode, 200);
  assert.match(String(csv.headers['content-type']), /^text\/csv/);
  assert.match(csv.body.split('\n')[1] ?? '', /^web,4,/);
  assert.equal((await app.inject({ url: '/v1/fleet/compliance' })).statusCode, 401);

  // The console: the sign-in page for anyone else, the pages for a signed-in operator.
  const anonymousPage = await app.inject({ url: '/fleet' });
  assert.equal(anonymousPage.statusCode, 303);
  assert.match(String(anonymousPage.headers.location), /^\/login\?next=%2Ffleet/);
  const signIn = await app.inject({
    method: 'POST',
    url: '/login',
    payload: { token: reader, next: '/fleet' },
  });
  const cookie = String(signIn.headers['set-cookie']).split(';')[0] ?? '';
  const fleetPage = await app.inject({ url: '/fleet', headers: { cookie } });
  assert.equal(fleetPage.statusCode, 200);
  const body = squash(fleetPage.body);
  assert.match(body, new RegExp(`<a href="/fleet/rollouts/${rollout.id}">${rollout.id} openssl</a>`));
  assert.match(body, /<span class="badge s-halted">halted<\/span>/);
  assert.match(body, /wave 2: 1 failures &gt; max errors 0/);
  assert.match(body, /<td>fh1<\/td>/);
  assert.match(
    body,
    /<td>fh2<\/td><td>lc-a<\/td><td>web<\/td><td>openssl-3\.0\.15 \([\d.]+\)<\/td><td><span class="badge s-failed">failed<\/span>/,
  );
  const rolloutPage = squash(
    (await app.inject({ url: `/fleet/rollouts/${rollout.id}`, headers: { cookie } })).body,
  );
  assert.match(rolloutPage, /canary<span class="badge s-done">done<\/span>/);
  assert.match(rolloutPage, /wave 2<span class="badge s-failed">failed<\/span>/);
  assert.match(rolloutPage, /wave 3<span class="badge s-pending">pending<\/span>/);
  assert.match(
    rolloutPage,
    /<td>fh2<\/td><td>lc-a<\/td><td>web<\/td><td><span class="badge s-failed">failed<\/span>/,
  );
  const missingPage = await app.inject({ url: '/fleet/rollouts/999999', headers: { cookie } });
  assert.equal(missingPage.statusCode, 404);
});
