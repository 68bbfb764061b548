// Rollouts created and steered through the daemon's API (fastify inject) over a real PostgreSQL 15
// (TLS) with two agents (fake host runner) and the control plane's scheduler: every change needs an
// admin token (none, a wrong one and a read-only one are refused, and change nothing); a rollout
// made through the API runs to its end, paused and resumed on the way; an aborted one cannot be
// resumed; a rollout awaiting approval is approved only with the administrator's code for its
// newest challenge (a replaced challenge's code, a wrong code, another rollout's challenge are
// refused); an LC is rolled back after its rollout completed, and the rollout's record shows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { silentLogger, waitFor } from '../../../src/core/index.ts';
import { buildApi, createApiToken, listAudit } from '../../../src/api/index.ts';
import { computeApprovalCode, parseDecision } from '../../../src/mail/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { fleetReader, getRollout, rolloutSteering, startControlWorker } from '../../../src/fleet/index.ts';
import { createFakeAgents, startFleetDb } from '../../helpers/fleet-fixture.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

interface Detail {
  id: number;
  state: string;
  reason: string | null;
  work: Record<string, number>;
  wavesDetail: {
    name: string;
    state: string;
    targets: { host: string; lc: string; state: string | null; rollback: string | null }[];
  }[];
  history: { actor: string; action: string; outcome: string; detail: Record<string, unknown> }[];
}

test('rollouts created and steered through the API: admin scope, approval codes, rollback of an LC after the end, all audited', async (t) => {
  const fx = await startFleetDb(t);
  const agents = await createFakeAgents(fx, { hosts: ['sh1', 'sh2'], pollMs: 150 });
  const worker = await startControlWorker({ db: fx.db, tickMs: 200, pollIntervalMs: 200 });
  fx.defer(() => worker.stop());
  for (const a of agents) a.start();

  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fleet-steer-'));
  const secret = randomBytes(32);
  const config = resolveMonitorConfig(
    { administrators: [{ name: 'alice', email: 'alice@x.test', secret: secret.toString('hex') }] },
    stateDir,
  );
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
  const app = buildApi({
    db,
    catalogue,
    monitor,
    config,
    logger: silentLogger,
    fleet: fleetReader(fx.db),
    fleetControl: rolloutSteering({ db: fx.db, jobs: worker }),
  });
  t.after(async () => {
    await app.close();
    db.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  const admin = { authorization: `Bearer ${createApiToken(db, { operator: 'ada', scope: 'admin' }).token}` };
  const reader = { authorization: `Bearer ${createApiToken(db, { operator: 'rick', scope: 'read' }).token}` };
  const post = (url: string, payload: unknown = {}, headers: Record<string, string> = admin) =>
    app.inject({ method: 'POST', url, payload: payload as object, headers });
  const detail = async (id: number): Promise<Detail> =>
    ((await app.inject({ url: `/v1/fleet/rollouts/${id}`, headers: reader })).json() as { rollout: Detail })
      .rollout;
  const until = async (id: number, states: string[]): Promise<Detail> => {
    const d = await waitFor(
      async () => {
        const r = await detail(id);
        return states.includes(r.state) ? r : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    assert.ok(d, `rollout ${id} reached ${states.join('/')}`);
    return d;
  };
  const spec = { name: 'openssl', canary: 1, maxConcurrency: 2, maxErrors: 0, watchSeconds: 1 };
  const rolloutCount = async (): Promise<number> =>
    Number((await fx.db.query<{ n: string }>('SELECT count(*) AS n FROM fleet.rollouts')).rows[0]?.n);

  // No token, a wrong token, a read-only token: refused, nothing made.
  const wrong = { authorization: `Bearer us_${randomBytes(8).toString('hex')}` };
  for (const headers of [{}, wrong]) {
    const res = await post('/v1/fleet/rollouts', spec, headers);
    assert.equal(res.statusCode, 401);
    assert.equal((res.json() as { code: string }).code, 'API_UNAUTHORIZED');
  }
  const readOnly = await post('/v1/fleet/rollouts', spec, reader);
  assert.equal(readOnly.statusCode, 403);
  assert.equal((readOnly.json() as { code: string }).code, 'API_FORBIDDEN');
  assert.equal(await rolloutCount(), 0);
  const invalid = await post('/v1/fleet/rollouts', { ...spec, canary: 'many' });
  assert.equal(invalid.statusCode, 400);
  assert.match((invalid.json() as { message: string }).message, /body\.canary/);
  const nobody = await post('/v1/fleet/rollouts', { ...spec, targets: { groups: ['db'] } });
  assert.equal(nobody.statusCode, 400);
  assert.equal((nobody.json() as { code: string }).code, 'FLEET_ROLLOUT_INVALID');
  const nowhere = await post('/v1/fleet/rollouts', {
    ...spec,
    windows: { web: [{ timeZone: 'Mars/Olympus_Mons', start: '02:00', durationMinutes: 60 }] },
  });
  assert.equal(nowhere.statusCode, 400);
  assert.match((nowhere.json() as { message: string }).message, /not a known time zone/);
  assert.equal(await rolloutCount(), 0);

  // 1. Made through the API, paused after the canary, resumed, run to its end.
  const made = await post('/v1/fleet/rollouts', { ...spec, watchSeconds: 3 });
  assert.equal(made.statusCode, 201, made.body);
  const first = (made.json() as { rollout: Detail }).rollout;
  assert.equal(first.state, 'running');
  assert.deepEqual(
    first.wavesDetail.map((w) => w.targets.length),
    [1, 2, 1],
  );
  const canaryDone = await waitFor(
    async () =>
      (await detail(first.id)).wavesDetail[0]?.targets[0]?.state === 'succeeded' ? true : undefined,
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  assert.ok(canaryDone, 'the canary switched');
  for (const [headers, status] of [
    [{}, 401],
    [wrong, 401],
    [reader, 403],
  ] as const) {
    const res = await post(`/v1/fleet/rollouts/${first.id}/pause`, {}, headers);
    assert.equal(res.statusCode, status);
  }
  const paused = await post(`/v1/fleet/rollouts/${first.id}/pause`);
  assert.equal(paused.statusCode, 200, paused.body);
  assert.deepEqual(paused.json(), { id: first.id, state: 'paused' });
  // Paused within the canary's watch (3 s): no second wave, however long it waits.
  await new Promise((r) => setTimeout(r, 3_500));
  const held = await detail(first.id);
  assert.equal(held.state, 'paused');
  assert.equal(held.reason, 'paused by ada');
  assert.equal(held.wavesDetail[1]?.state, 'pending');
  const resumed = await post(`/v1/fleet/rollouts/${first.id}/resume`);
  assert.deepEqual(resumed.json(), { id: first.id, state: 'running' });
  const completed = await until(first.id, ['completed', 'halted']);
  assert.equal(completed.state, 'completed');
  assert.equal(completed.work.succeeded, 4);

  // 2. Aborted: stopped for good.
  const second = (
    (await post('/v1/fleet/rollouts', { ...spec, name: 'aborted', watchSeconds: 30 })).json() as {
      rollout: Detail;
    }
  ).rollout;
  const aborted = await post(`/v1/fleet/rollouts/${second.id}/abort`);
  assert.deepEqual(aborted.json(), { id: second.id, state: 'stopped' });
  const again = await post(`/v1/fleet/rollouts/${second.id}/resume`);
  assert.equal(again.statusCode, 409);
  assert.equal((again.json() as { code: string }).code, 'FLEET_ROLLOUT_STATE');
  assert.equal((await detail(second.id)).reason, 'stopped by ada');
  assert.equal((await post('/v1/fleet/rollouts/999999/pause')).statusCode, 404);

  // 3. Awaiting approval: only alice's code for her newest challenge starts it.
  const gated = (
    (
      await post('/v1/fleet/rollouts', { ...spec, name: 'gated', watchSeconds: 0.2, requireApproval: true })
    ).json() as {
      rollout: Detail;
    }
  ).rollout;
  assert.equal(gated.state, 'awaiting-approval');
  assert.equal((await post(`/v1/fleet/rollouts/${gated.id}/resume`)).statusCode, 409);
  const issue = async (): Promise<string> => {
    const res = await post(`/v1/fleet/rollouts/${gated.id}/challenges`, { admin: 'alice' });
    assert.equal(res.statusCode, 201, res.body);
    return (res.json() as { challenge: string }).challenge;
  };
  const oldChallenge = await issue();
  const newChallenge = await issue();
  assert.notEqual(oldChallenge, newChallenge);
  assert.equal(
    (await post(`/v1/fleet/rollouts/${gated.id}/challenges`, { admin: 'mallory' })).statusCode,
    400,
  );
  assert.equal(
    (await post(`/v1/fleet/rollouts/${gated.id}/challenges`, { admin: 'alice' }, reader)).statusCode,
    403,
  );
  const codeFor = (challenge: string, decision = 'approve all'): string =>
    computeApprovalCode({ secret, challenge, decision: parseDecision(decision) });
  const approve = (challenge: string, code: string, headers = admin, id = gated.id) =>
    post(
      `/v1/fleet/rollouts/${id}/approval`,
      { admin: 'alice', challenge, decision: 'approve all', code },
      headers,
    );
  const refusedWith = async (res: Awaited<ReturnType<typeof approve>>, reason: string): Promise<void> => {
    assert.equal(res.statusCode, 403, res.body);
    const body = res.json() as { code: string; details?: { reason: string } };
    assert.equal(body.code, 'APPROVAL_REJECTED');
    assert.equal(body.details?.reason, reason);
  };
  await refusedWith(await approve(oldChallenge, codeFor(oldChallenge)), 'replaced');
  await refusedWith(await approve(newChallenge, '12345678'), 'wrong-code');
  await refusedWith(await approve(newChallenge, codeFor(newChallenge), admin, second.id), 'foreign');
  const byReader = await approve(newChallenge, codeFor(newChallenge), reader);
  assert.equal(byReader.statusCode, 403);
  assert.equal((byReader.json() as { code: string }).code, 'API_FORBIDDEN');
  assert.equal((await getRollout(fx.db, gated.id)).state, 'awaiting-approval');
  const work = async (id: number): Promise<number> =>
    Number(
      (await fx.db.query<{ n: string }>('SELECT count(*) AS n FROM fleet.work WHERE rollout_id = $1', [id]))
        .rows[0]?.n,
    );
  assert.equal(await work(gated.id), 0, 'nothing dispatched before the approval');
  const approved = await approve(newChallenge, codeFor(newChallenge));
  assert.equal(approved.statusCode, 200, approved.body);
  assert.deepEqual(approved.json(), {
    accepted: true,
    rolloutId: gated.id,
    admin: 'alice',
    state: 'running',
  });
  assert.equal(
    (await getRollout(fx.db, gated.id)).reason,
    'approved by alice through the API (operator ada)',
  );
  await refusedWith(await approve(newChallenge, codeFor(newChallenge)), 'reused');
  const gatedDone = await until(gated.id, ['completed', 'halted']);
  assert.equal(gatedDone.state, 'completed');
  // A challenge only for a rollout awaiting approval.
  assert.equal((await post(`/v1/fleet/rollouts/${gated.id}/challenges`, { admin: 'alice' })).statusCode, 409);
  // Its second wave (two LCs) rolled back after the end; a read token may not, wave 9 does not exist.
  assert.equal((await post(`/v1/fleet/rollouts/${gated.id}/waves/2/rollback`, {}, reader)).statusCode, 403);
  assert.equal((await post(`/v1/fleet/rollouts/${gated.id}/waves/9/rollback`)).statusCode, 404);
  const waveBack = await post(`/v1/fleet/rollouts/${gated.id}/waves/2/rollback`);
  assert.equal(waveBack.statusCode, 202, waveBack.body);
  assert.deepEqual(waveBack.json(), { id: gated.id, wave: 2, rollingBack: 2 });
  const waveReverted = await waitFor(
    async () => {
      const d = await detail(gated.id);
      return d.wavesDetail[1]?.targets.every((x) => x.state === 'reverted' && x.rollback === 'succeeded')
        ? d
        : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  assert.ok(waveReverted, 'both LCs of wave 2 were rolled back');
  assert.equal(waveReverted.state, 'completed');
  assert.equal(waveReverted.wavesDetail[0]?.targets[0]?.state, 'succeeded', 'the canary stays patched');

  // 4. One LC of the completed first rollout rolled back: the rollout's record shows it.
  assert.equal(
    (await post(`/v1/fleet/rollouts/${first.id}/lcs/sh1/lc-a/rollback`, {}, reader)).statusCode,
    403,
  );
  assert.equal((await post(`/v1/fleet/rollouts/${first.id}/lcs/sh9/lc-a/rollback`)).statusCode, 404);
  const back = await post(`/v1/fleet/rollouts/${first.id}/lcs/sh1/lc-a/rollback`);
  assert.equal(back.statusCode, 202, back.body);
  const rolledBack = await waitFor(
    async () => {
      const d = await detail(first.id);
      const target = d.wavesDetail.flatMap((w) => w.targets).find((x) => x.host === 'sh1' && x.lc === 'lc-a');
      return target?.rollback === 'succeeded' ? { d, target } : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  assert.ok(rolledBack, 'the agent rolled sh1/lc-a back');
  assert.equal(rolledBack.target.state, 'reverted');
  assert.equal(rolledBack.d.state, 'completed', 'the rollout stays completed');
  assert.equal(rolledBack.d.work.reverted, 1);
  const twice = await post(`/v1/fleet/rollouts/${first.id}/lcs/sh1/lc-a/rollback`);
  assert.equal(twice.statusCode, 409);
  assert.deepEqual(
    rolledBack.d.history.map((h) => `${h.actor}:${h.action}:${h.outcome}`),
    [
      'ada:rollout.create:allowed',
      'ada:rollout.pause:allowed',
      'ada:rollout.resume:allowed',
      'ada:rollout.rollback-lc:refused', // sh9/lc-a is not an LC of the rollout
      'ada:rollout.rollback-lc:allowed',
    ],
  );
  assert.equal((await detail(first.id)).history.at(-1)?.outcome, 'refused', 'the second rollback');
  const gatedHistory = (await detail(gated.id)).history.map(
    (h) => `${h.actor}:${h.action}:${h.outcome}:${String(h.detail.reason ?? '')}`,
  );
  assert.deepEqual(gatedHistory, [
    'ada:rollout.create:allowed:',
    'ada:rollout.resume:refused:',
    'ada:rollout.challenge:allowed:',
    'ada:rollout.challenge:allowed:',
    'ada:rollout.approve:refused:replaced',
    'ada:rollout.approve:refused:wrong-code',
    'ada:rollout.approve:refused:foreign',
    'alice:rollout.approve:allowed:',
    'ada:rollout.approve:refused:reused',
    'ada:rollout.challenge:refused:',
    'ada:rollout.rollback-wave:refused:',
    'ada:rollout.rollback-wave:allowed:',
  ]);

  // The daemon's own audit log has every change, refused ones too, with the code redacted.
  const audit = listAudit(db, 500);
  const actions = audit.map((e) => `${e.operator}:${e.action}:${e.status}`);
  assert.ok(actions.includes('ada:POST /v1/fleet/rollouts:201'));
  assert.ok(actions.includes('rick:POST /v1/fleet/rollouts:403'));
  assert.ok(actions.includes('anonymous:POST /v1/fleet/rollouts:401'));
  assert.ok(actions.includes('ada:POST /v1/fleet/rollouts/:id/approval:200'));
  assert.ok(actions.includes('ada:POST /v1/fleet/rollouts/:id/lcs/:host/:lc/rollback:202'));
  // (a request refused before its body was read has none)
  const codes = audit
    .filter((x) => x.action.endsWith('/approval'))
    .map((e) => (e.details.body as { code?: string }).code);
  assert.ok(codes.includes('[redacted]'));
  assert.ok(
    codes.every((c) => c === undefined || c === '[redacted]'),
    JSON.stringify(codes),
  );

  // The OpenAPI document has the new routes, each needing the admin scope.
  const doc = (await app.inject({ url: '/v1/openapi.json' })).json() as {
    paths: Record<string, Record<string, { 'x-scope': string; requestBody?: unknown }>>;
  };
  for (const [url, method] of [
    ['/v1/fleet/rollouts', 'post'],
    ['/v1/fleet/rollouts/{id}/pause', 'post'],
    ['/v1/fleet/rollouts/{id}/resume', 'post'],
    ['/v1/fleet/rollouts/{id}/abort', 'post'],
    ['/v1/fleet/rollouts/{id}/waves/{wave}/rollback', 'post'],
    ['/v1/fleet/rollouts/{id}/lcs/{host}/{lc}/rollback', 'post'],
    ['/v1/fleet/rollouts/{id}/challenges', 'post'],
    ['/v1/fleet/rollouts/{id}/approval', 'post'],
  ] as const)
    assert.equal(doc.paths[url]?.[method]?.['x-scope'], 'admin', `${method} ${url}`);
  assert.ok(doc.paths['/v1/fleet/rollouts']?.post?.requestBody, 'the rollout definition is documented');

  // The console's navigation links /fleet (a control plane is configured).
  const signIn = await app.inject({
    method: 'POST',
    url: '/login',
    payload: { token: reader.authorization.slice(7), next: '/' },
  });
  const cookie = String(signIn.headers['set-cookie']).split(';')[0] ?? '';
  for (const url of ['/', '/runs', '/fleet']) {
    const res = await app.inject({ url, headers: { cookie } });
    assert.match(res.body, /<nav aria-label="main">[\s\S]*<a href="\/fleet">Fleet<\/a>[\s\S]*<\/nav>/, url);
  }
});
