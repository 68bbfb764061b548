// Every /v1 route driven in-process (fastify inject) over a real SQLite store: auth (no token, wrong,
// revoked, read-only on a change), schema validation, error bodies from the catalogue, audit of
// every change, the OpenAPI document, and the event stream with Last-Event-ID resume.
import crypto from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/core/index.ts';
import {
  buildApi,
  createApiToken,
  listApiTokens,
  revokeApiToken,
  runEventRecorder,
} from '../../../src/api/index.ts';
import { insertLc, validateServices } from '../../../src/inventory/index.ts';
import { demoService } from '../../../src/demo/index.ts';
import { RunJournal, resolveRunOptions } from '../../../src/run/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { issueChallenge } from '../../../src/mail/index.ts';
import { EventLog } from '../../../src/events/index.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

async function setup(t: { after: (fn: () => unknown) => void }) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-routes-'));
  const config = resolveMonitorConfig(
    {
      administrators: [
        { name: 'alice', email: 'alice@example.test', secret: randomBytes(32).toString('hex') },
      ],
    },
    stateDir,
  );
  const { db, catalogue } = openMonitorStore(stateDir);
  const monitor = createMonitor({
    db,
    catalogue,
    config,
    stateDir,
    fetcher: realFetcher,
    managedLcs: { list: async () => ['lc1'], installedPackages: async () => new Map() },
    logger: silentLogger,
  });
  const app = buildApi({ db, catalogue, monitor, config, logger: silentLogger });
  t.after(async () => {
    await app.close();
    db.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  const admin = createApiToken(db, { operator: 'ada', scope: 'admin' }).token;
  const reader = createApiToken(db, { operator: 'rick', scope: 'read' }).token;
  return { app, db, catalogue, stateDir, admin, reader };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const errorKeys = ['code', 'error', 'hint', 'message', 'statusCode'];

void test('auth: no token, wrong token, revoked token → 401; read-only token on a change → 403; all with the error body', async (t) => {
  const { app, db, reader, admin } = await setup(t);
  const changes = [
    ['POST', '/v1/lcs', { name: 'x', image: 'busybox' }],
    ['POST', '/v1/lcs/lc1/start', {}],
    ['POST', '/v1/lcs/lc1/stop', {}],
    ['DELETE', '/v1/lcs/lc1', undefined],
    ['POST', '/v1/patches', { name: 'p', categories: ['security'], format: 'script', contentBase64: 'eA==' }],
    ['POST', '/v1/patches/p1/next-run', { lc: 'lc1', nextRun: true }],
    ['POST', '/v1/runs', { lc: 'lc1' }],
    ['POST', '/v1/runs/r1/resume', {}],
    ['POST', '/v1/runs/r1/rollback', {}],
    ['POST', '/v1/runs/r1/cancel', {}],
    ['POST', '/v1/switches', { from: 'lc1', to: 'lc2', method: 'instant' }],
    ['POST', '/v1/images', { recipe: 'busybox' }],
    ['POST', '/v1/monitor/poll', {}],
    ['POST', '/v1/approvals', { admin: 'alice', challenge: 'abcdefgh', decision: 'reject', code: '1' }],
    ['PUT', '/v1/lcs/lc1/services', { services: [] }],
    ['POST', '/v1/lcs/lc1/role', { role: 'idle' }],
    ['POST', '/v1/lcs/lc1/reboot', {}],
    ['POST', '/v1/lcs/lc1/updates', {}],
    ['DELETE', '/v1/images/busybox', undefined],
    ['DELETE', '/v1/feeds/sec', undefined],
    ['POST', '/v1/tokens', { operator: 'mallory', scope: 'admin' }],
    ['DELETE', '/v1/tokens/abc', undefined],
    ['POST', '/v1/host/pools', { name: 'fast' }],
    ['POST', '/v1/images/import', { source: '/srv/rootfs', name: 'mine' }],
    ['POST', '/v1/lcs/import', { container: 'web' }],
    ['POST', '/v1/lcs/lc1/exec', { argv: ['true'] }],
    ['POST', '/v1/lcs/lc1/nics', { addresses: [] }],
    ['DELETE', '/v1/lcs/lc1/nics/eth1', undefined],
    ['POST', '/v1/apply', { yaml: 'host: {}' }],
    ['POST', '/v1/disk-copies', { from: 'lc1', disk: 'app', to: 'lc2' }],
    ['POST', '/v1/feeds', { name: 'sec', kind: 'apt', url: 'http://x/', options: {} }],
  ] as const;
  const reads = [
    '/v1/feeds',
    '/v1/tokens',
    '/v1/disk-copies',
    '/v1/host',
    '/v1/images',
    '/v1/lcs',
    '/v1/patches',
    '/v1/runs',
    '/v1/switches',
    '/v1/monitor/status',
    '/v1/approvals',
    '/v1/audit',
  ];
  const revoked = createApiToken(db, { operator: 'gone', scope: 'admin' });
  revokeApiToken(db, revoked.info.id);
  for (const headers of [
    {},
    bearer('us_wrong'),
    bearer(revoked.token),
    { authorization: `Basic ${admin}` },
  ]) {
    for (const url of reads) {
      const res = await app.inject({ url, headers });
      assert.equal(res.statusCode, 401, `${url} with ${JSON.stringify(headers)}`);
      assert.deepEqual(Object.keys(res.json() as object).sort(), errorKeys);
      assert.equal((res.json() as { code: string }).code, 'API_UNAUTHORIZED');
    }
    for (const [method, url, payload] of changes) {
      const res = await app.inject({ method, url, headers, payload });
      assert.equal(res.statusCode, 401, `${method} ${url}`);
    }
  }
  for (const url of reads)
    assert.equal((await app.inject({ url, headers: bearer(reader) })).statusCode, 200, url);
  for (const [method, url, payload] of changes) {
    const res = await app.inject({ method, url, headers: bearer(reader), payload });
    assert.equal(res.statusCode, 403, `${method} ${url} with a read-only token`);
    const body = res.json() as { code: string; message: string };
    assert.equal(body.code, 'API_FORBIDDEN');
    assert.match(body.message, /rick is read-only/);
  }
  // Only the hash is stored: the store holds no token.
  const dump = JSON.stringify(db.prepare('SELECT * FROM api_tokens').all());
  assert.ok(!dump.includes(admin) && !dump.includes(reader));
  assert.ok(dump.includes(createHash('sha256').update(admin).digest('hex')));
  assert.ok(listApiTokens(db).find((x) => x.operator === 'rick')?.lastUsedAt, 'last use is recorded');
});

void test('schema validation: wrong fields answer 400 INVALID_ARGUMENT naming the field', async (t) => {
  const { app, admin } = await setup(t);
  const cases = [
    ['POST', '/v1/lcs', { name: 'x' }, /body\.image/],
    ['POST', '/v1/lcs', { name: 'x', image: 'busybox', memoryMb: 'lots' }, /body\.memoryMb/],
    ['POST', '/v1/lcs', { name: 'x', image: 'busybox', bogus: 1 }, /body/],
    ['POST', '/v1/runs', { lc: 'lc1', method: 'teleport' }, /body\.method/],
    ['POST', '/v1/runs', { lc: 'lc1', bootTimeoutMs: -5 }, /body\.bootTimeoutMs/],
    // The service's port and health check come from the LC's declared service, never from a run.
    ['POST', '/v1/runs', { lc: 'lc1', port: 80 }, /Unrecognized key: "port"/],
    ['POST', '/v1/patches/p1/next-run', { lc: 'lc1' }, /body\.nextRun/],
    [
      'POST',
      '/v1/patches',
      { name: 'p', categories: ['cosmetic'], format: 'script', contentBase64: 'eA==' },
      /body\.categories/,
    ],
    ['POST', '/v1/approvals', { admin: 'alice' }, /body\.challenge/],
    ['GET', '/v1/audit?limit=0', undefined, /query\.limit/],
    ['GET', '/v1/events?after=-1&follow=false', undefined, /query\.after/],
    ['POST', '/v1/switches', { from: 'lc1', method: 'instant' }, /body\.to/],
    ['POST', '/v1/images', { recipe: 'busybox', packages: 'nginx' }, /body\.packages/],
    [
      'POST',
      '/v1/switches',
      { from: 'lc1', to: 'lc2', method: 'instant', drainTimeoutMs: -5 },
      /body\.drainTimeoutMs/,
    ],
    ['PUT', '/v1/lcs/lc1/services', { services: 'web' }, /body\.services/],
    ['PUT', '/v1/lcs/lc1/services', { services: Array.from({ length: 17 }, () => ({})) }, /body\.services/],
    ['POST', '/v1/lcs/lc1/role', { role: 'boss' }, /body\.role/],
    ['POST', '/v1/lcs/lc1/updates', { feeds: ['x'.repeat(65)] }, /body\.feeds\.0/],
    ['GET', `/v1/lcs/lc1/updates?feed=${'a,'.repeat(21)}`, undefined, /query\.feed/],
    ['POST', '/v1/tokens', { operator: 'x', scope: 'root' }, /body\.scope/],
    ['GET', '/v1/disk-copies/c1?limit=5000', undefined, /query\.limit/],
    ['POST', '/v1/host/pools', { name: 'fast', device: 'sdb' }, /body\.device/],
    ['POST', '/v1/images/import', { source: 'rootfs', name: 'mine' }, /body\.source/],
    ['POST', '/v1/lcs/import', { lxcPath: '/var/lib/lxc' }, /body\.container/],
    ['POST', '/v1/lcs/lc1/exec', { argv: [] }, /body\.argv/],
    ['POST', '/v1/lcs/lc1/exec', { argv: ['sleep', '1'], timeoutMs: 0 }, /body\.timeoutMs/],
    ['POST', '/v1/lcs/lc1/nics', { addresses: '198.18.0.5/24' }, /body\.addresses/],
    ['POST', '/v1/apply', { yaml: '' }, /body\.yaml/],
    ['POST', '/v1/disk-copies', { from: 'lc1', disk: 'app', to: 'lc2', mode: 'rsync' }, /body\.mode/],
    ['POST', '/v1/feeds', { name: 'sec', kind: 'rss', url: 'http://x/', options: {} }, /body\.kind/],
  ] as const;
  for (const [method, url, payload, field] of cases) {
    const res = await app.inject({ method, url, headers: bearer(admin), payload });
    assert.equal(res.statusCode, 400, `${method} ${url} ${JSON.stringify(payload)}: ${res.body}`);
    const body = res.json() as { code: string; message: string; hint: string };
    assert.equal(body.code, 'INVALID_ARGUMENT');
    assert.match(body.message, field);
    assert.match(body.hint, /openapi/);
  }
  const notJson = await app.inject({
    method: 'POST',
    url: '/v1/lcs',
    headers: { ...bearer(admin), 'content-type': 'application/json' },
    payload: '{nope',
  });
  assert.equal(notJson.statusCode, 400);
  assert.equal((notJson.json() as { code: string }).code, 'INVALID_ARGUMENT');
});

void test('routes answer from the store; errors carry the catalogue code and the right status', async (t) => {
  const { app, db, catalogue, stateDir, admin } = await setup(t);
  const get = async (url: string) => app.inject({ url, headers: bearer(admin) });
  const post = async (url: string, payload: unknown = {}) =>
    app.inject({ method: 'POST', url, headers: bearer(admin), payload: payload as object });

  const host = (await get('/v1/host')).json() as { initialised: boolean; capacity: { cpuCount: number } };
  assert.equal(host.initialised, false);
  assert.ok(host.capacity.cpuCount >= 1);
  assert.deepEqual((await get('/v1/images')).json(), { images: [] });

  for (const name of ['lc1', 'lc2']) {
    insertLc(db, {
      name,
      driver: 'namespace',
      image: 'busybox',
      cpus: '0',
      cpuSharePercent: 100,
      memoryMb: 128,
      role: name === 'lc1' ? 'active' : 'idle',
      disks: [
        { name: 'system', pool: 'main', sizeMb: 1024, mountPath: '/' },
        { name: 'app', pool: 'main', sizeMb: 512, mountPath: '/srv' },
      ],
      nics: [
        {
          name: 'eth0',
          mac: `02:00:00:00:00:0${name.at(-1)}`,
          addresses: [`198.18.0.1${name.at(-1)}/24`],
          bridge: 'br0',
        },
      ],
    } as never);
  }
  const lcs = (await get('/v1/lcs')).json() as {
    lcs: { name: string; role: string; status: { state: string } }[];
  };
  assert.deepEqual(
    lcs.lcs.map((l) => [l.name, l.role, l.status.state]),
    [
      ['lc1', 'active', 'stopped'],
      ['lc2', 'idle', 'stopped'],
    ],
  );
  assert.equal(((await get('/v1/lcs/lc1')).json() as { lc: { name: string } }).lc.name, 'lc1');
  const missing = await get('/v1/lcs/nope');
  assert.equal(missing.statusCode, 404);
  assert.equal((missing.json() as { code: string }).code, 'LC_NOT_FOUND');
  const service = (await get('/v1/lcs/lc1/service')).json() as { state: string; url: string | null };
  assert.deepEqual([service.state, service.url], ['unknown', null], 'a stopped LC has no service to ask');
  assert.equal((await get('/v1/lcs/lc1/service?port=0')).statusCode, 400);
  const standby = (await get('/v1/lcs/lc1/standby-for')).json() as { candidates: { lc: string }[] };
  assert.deepEqual(
    standby.candidates.map((c) => c.lc),
    ['lc2'],
  );

  // Without an initialised host the daemon cannot change LCs or run patches: 409 with the catalogue's hint.
  for (const [method, url, payload] of [
    ['POST', '/v1/lcs', { name: 'lc3', image: 'busybox' }],
    ['POST', '/v1/lcs/lc1/start', {}],
    ['POST', '/v1/lcs/lc1/stop', {}],
    ['DELETE', '/v1/lcs/lc1?force=true', undefined],
    ['POST', '/v1/switches', { from: 'lc1', to: 'lc2', method: 'instant' }],
    ['POST', '/v1/images', { recipe: 'busybox' }],
  ] as const) {
    const res = await app.inject({ method, url, headers: bearer(admin), payload });
    assert.equal(res.statusCode, 409, `${method} ${url}: ${res.body}`);
    assert.equal((res.json() as { code: string }).code, 'HOST_NOT_INITIALISED');
  }
  // An unknown switch method is refused as the CLI's --method refuses it.
  const teleport = await post('/v1/switches', { from: 'lc1', to: 'lc2', method: 'teleport' });
  assert.equal(teleport.statusCode, 400);
  assert.equal((teleport.json() as { code: string }).code, 'SWITCH_METHOD_UNKNOWN');

  // Patches: upload (hash checked), list security first, mark for the next run.
  const content = Buffer.from('#!/bin/sh\necho patched\n');
  const sha256 = createHash('sha256').update(content).digest('hex');
  const wrongHash = await post('/v1/patches', {
    name: 'p-sec',
    categories: ['security'],
    format: 'script',
    contentBase64: content.toString('base64'),
    sha256: '0'.repeat(64),
  });
  assert.equal(wrongHash.statusCode, 400);
  assert.equal((wrongHash.json() as { code: string }).code, 'PATCH_HASH_MISMATCH');
  assert.equal(
    (
      await post('/v1/patches', {
        name: 'a-feature',
        categories: ['feature'],
        format: 'script',
        contentBase64: content.toString('base64'),
      })
    ).statusCode,
    201,
  );
  const added = await post('/v1/patches', {
    name: 'p-sec',
    categories: ['security'],
    format: 'script',
    contentBase64: content.toString('base64'),
    sha256,
  });
  assert.equal(added.statusCode, 201, added.body);
  assert.equal(catalogue.getPatch('p-sec').sha256, sha256);
  const listed = (await get('/v1/patches?lc=lc1')).json() as { patches: { name: string }[] };
  assert.deepEqual(
    listed.patches.map((p) => p.name),
    ['p-sec', 'a-feature'],
    'security first',
  );
  const marked = await post('/v1/patches/p-sec/next-run', { lc: 'lc1', nextRun: true });
  assert.equal((marked.json() as { state: { applyNextRun: boolean } }).state.applyNextRun, true);
  assert.equal((await get('/v1/patches/p-sec')).statusCode, 200);
  // The same checks as the CLI: an LC that does not exist, a file that is not what its format says.
  const unknownLc = await post('/v1/patches/p-sec/next-run', { lc: 'no-such-lc', nextRun: true });
  assert.equal(unknownLc.statusCode, 404, unknownLc.body);
  assert.equal((unknownLc.json() as { code: string }).code, 'LC_NOT_FOUND');
  assert.equal(catalogue.lcStates({ lc: 'no-such-lc' }).length, 0, 'nothing recorded for an unknown LC');
  const randomDiff = await post('/v1/patches', {
    name: 'random-diff',
    categories: ['bugfix'],
    format: 'diff',
    contentBase64: crypto.randomBytes(512).toString('base64'),
  });
  assert.equal(randomDiff.statusCode, 400, randomDiff.body);
  const randomError = randomDiff.json() as { code: string; message: string };
  assert.equal(randomError.code, 'PATCH_FILE_INVALID');
  assert.match(randomError.message, /random-diff/, 'the message names the uploaded patch');
  assert.equal((await get('/v1/patches/random-diff')).statusCode, 404, 'nothing registered');
  assert.equal((await get('/v1/patches/nope')).statusCode, 404);

  // Runs: a run in the journal shows with every step and its timing; actions check its state.
  const journal = new RunJournal(db);
  const id = journal.create(
    resolveRunOptions({ lc: 'lc1', patches: ['p-sec'] }, catalogue, validateServices([demoService])),
    ['find-standby', 'scan', 'switch'],
  );
  journal.stepStarted(id, 0);
  journal.stepEnded(id, 0, 'done', { durationMs: 12, output: { standby: 'lc2' } });
  const shown = (await get(`/v1/runs/${id}`)).json() as {
    run: { steps: { name: string; state: string; durationMs: number | null }[] };
  };
  assert.deepEqual(
    shown.run.steps.map((s) => [s.name, s.state, s.durationMs]),
    [
      ['find-standby', 'done', 12],
      ['scan', 'pending', null],
      ['switch', 'pending', null],
    ],
  );
  assert.deepEqual(
    ((await get('/v1/runs?lc=lc1')).json() as { runs: { id: string }[] }).runs.map((r) => r.id),
    [id],
  );
  assert.deepEqual(((await get('/v1/runs?lc=lc2')).json() as { runs: unknown[] }).runs, []);
  assert.equal((await get('/v1/runs/r000000-nope')).statusCode, 404);
  const cancel = await post(`/v1/runs/${id}/cancel`);
  assert.equal(cancel.statusCode, 409);
  assert.match((cancel.json() as { message: string }).message, /another process drives it/);
  const rollback = await post(`/v1/runs/${id}/rollback`);
  assert.equal(rollback.statusCode, 409);
  assert.equal((rollback.json() as { code: string }).code, 'RUN_NOT_SWITCHED');
  const start = await post('/v1/runs', { lc: 'lc1' });
  assert.equal(start.statusCode, 409);
  assert.equal((start.json() as { code: string }).code, 'HOST_NOT_INITIALISED');

  assert.deepEqual((await get('/v1/switches')).json(), { switches: [] });
  assert.equal(((await get('/v1/switches/nope')).json() as { code: string }).code, 'SWITCH_NOT_FOUND');
  assert.equal((await get('/v1/monitor/status')).statusCode, 200);
  assert.deepEqual(((await post('/v1/monitor/poll')).json() as { results: unknown[] }).results, []);
  issueChallenge(db, { admin: 'alice', patches: ['p-sec'], ttlMs: 3600_000, now: new Date() });
  assert.equal(((await get('/v1/approvals')).json() as { open: unknown[] }).open.length, 1);
  assert.ok(fs.existsSync(stateDir));
});

void test('every change is audited (who, what, when, outcome) and streamed as an event', async (t) => {
  const { app, admin, reader, db } = await setup(t);
  await app.inject({
    method: 'POST',
    url: '/v1/patches/nope/next-run',
    headers: bearer(admin),
    payload: { lc: 'lc1', nextRun: true },
  });
  await app.inject({ method: 'POST', url: '/v1/monitor/poll', headers: bearer(reader), payload: {} });
  await app.inject({
    method: 'POST',
    url: '/v1/approvals',
    headers: bearer(admin),
    payload: { admin: 'alice', challenge: 'abcdefgh12', decision: 'reject', code: '12345678' },
  });
  const audit = (await app.inject({ url: '/v1/audit', headers: bearer(reader) })).json() as {
    entries: {
      operator: string;
      action: string;
      target: string | null;
      status: number;
      at: string;
      details: { body: Record<string, unknown> };
    }[];
  };
  assert.deepEqual(
    audit.entries.map((e) => [e.operator, e.action, e.target, e.status]),
    [
      ['ada', 'POST /v1/approvals', 'abcdefgh12', 403],
      ['rick', 'POST /v1/monitor/poll', null, 403],
      ['ada', 'POST /v1/patches/:name/next-run', 'nope@lc1', 404],
    ],
  );
  assert.equal(audit.entries[0]?.details.body.code, '[redacted]', 'approval codes are not kept');
  assert.ok(audit.entries.every((e) => !Number.isNaN(Date.parse(e.at))));
  const events = new EventLog(db).after(0);
  assert.deepEqual(
    events.filter((e) => e.type === 'audit').map((e) => e.data.action),
    ['POST /v1/patches/:name/next-run', 'POST /v1/monitor/poll', 'POST /v1/approvals'],
  );
  assert.ok(events.some((e) => e.type === 'approval' && e.data.accepted === false));
});

void test('the OpenAPI document lists every route with its scope and schemas', async (t) => {
  const { app } = await setup(t);
  const res = await app.inject({ url: '/v1/openapi.json' });
  assert.equal(res.statusCode, 200);
  const doc = res.json() as {
    openapi: string;
    paths: Record<
      string,
      Record<
        string,
        {
          'x-scope': string;
          requestBody?: {
            content: Record<string, { schema: { properties: Record<string, unknown>; required?: string[] } }>;
          };
        }
      >
    >;
  };
  assert.equal(doc.openapi, '3.1.0');
  for (const [url, method] of [
    ['/v1/host', 'get'],
    ['/v1/images', 'get'],
    ['/v1/lcs', 'get'],
    ['/v1/lcs', 'post'],
    ['/v1/lcs/{name}', 'get'],
    ['/v1/lcs/{name}', 'delete'],
    ['/v1/lcs/{name}/start', 'post'],
    ['/v1/lcs/{name}/stop', 'post'],
    ['/v1/lcs/{name}/standby-for', 'get'],
    ['/v1/lcs/{name}/service', 'get'],
    ['/v1/patches', 'get'],
    ['/v1/patches', 'post'],
    ['/v1/patches/{name}/next-run', 'post'],
    ['/v1/runs', 'get'],
    ['/v1/runs', 'post'],
    ['/v1/runs/{id}', 'get'],
    ['/v1/runs/{id}/resume', 'post'],
    ['/v1/runs/{id}/rollback', 'post'],
    ['/v1/runs/{id}/cancel', 'post'],
    ['/v1/switches', 'get'],
    ['/v1/switches/{id}', 'get'],
    ['/v1/monitor/status', 'get'],
    ['/v1/monitor/poll', 'post'],
    ['/v1/approvals', 'get'],
    ['/v1/approvals', 'post'],
    ['/v1/events', 'get'],
    ['/v1/audit', 'get'],
    ['/v1/lcs/{name}/services', 'get'],
    ['/v1/lcs/{name}/services', 'put'],
    ['/v1/lcs/{name}/role', 'post'],
    ['/v1/lcs/{name}/reboot', 'post'],
    ['/v1/lcs/{name}/updates', 'get'],
    ['/v1/lcs/{name}/updates', 'post'],
    ['/v1/images/{name}', 'delete'],
    ['/v1/feeds', 'get'],
    ['/v1/feeds/{name}', 'delete'],
    ['/v1/tokens', 'get'],
    ['/v1/tokens', 'post'],
    ['/v1/tokens/{id}', 'delete'],
    ['/v1/disk-copies', 'get'],
    ['/v1/disk-copies/{id}', 'get'],
    ['/v1/disk-copies', 'post'],
    ['/v1/host/pools', 'post'],
    ['/v1/images/import', 'post'],
    ['/v1/lcs/import', 'post'],
    ['/v1/lcs/{name}/exec', 'post'],
    ['/v1/lcs/{name}/nics', 'post'],
    ['/v1/lcs/{name}/nics/{nic}', 'delete'],
    ['/v1/apply', 'post'],
    ['/v1/feeds', 'post'],
  ] as const) {
    const op = doc.paths[url]?.[method];
    assert.ok(op, `${method} ${url} is documented`);
    assert.equal(op['x-scope'], method === 'get' ? 'read' : 'admin');
  }
  const runBody = doc.paths['/v1/runs']?.post?.requestBody?.content['application/json']?.schema;
  assert.deepEqual(runBody?.required, ['lc']);
  assert.ok(runBody?.properties.method);
});

void test('the event stream: stored events in order, resumed after Last-Event-ID, filtered by run', async (t) => {
  const { app, db, reader } = await setup(t);
  const log = new EventLog(db);
  const a = log.append({ type: 'run.step', runId: 'r1', data: { step: 'scan', state: 'running' } });
  log.append({ type: 'run.step', runId: 'r2', data: { step: 'scan', state: 'running' } });
  const c = log.append({
    type: 'run.step',
    runId: 'r1',
    data: { step: 'scan', state: 'done', durationMs: 40 },
  });
  const parse = (body: string) =>
    body
      .split('\n\n')
      .filter((block) => block.includes('data: '))
      .map((block) => {
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as {
          runId: string;
          data: { state: string };
        };
        return { id: Number(id), event: /^event: (.*)$/m.exec(block)?.[1], ...data };
      });
  const all = await app.inject({ url: '/v1/events?after=0&follow=false', headers: bearer(reader) });
  assert.equal(all.statusCode, 200);
  assert.match(String(all.headers['content-type']), /text\/event-stream/);
  assert.deepEqual(
    parse(all.body).map((e) => e.id),
    [a.id, a.id + 1, c.id],
  );
  assert.equal(parse(all.body)[0]?.event, 'run.step');
  const resumed = await app.inject({
    url: '/v1/events?follow=false',
    headers: { ...bearer(reader), 'last-event-id': String(a.id) },
  });
  assert.deepEqual(
    parse(resumed.body).map((e) => e.id),
    [a.id + 1, c.id],
  );
  const oneRun = await app.inject({ url: '/v1/events?run=r1&follow=false', headers: bearer(reader) });
  assert.deepEqual(
    parse(oneRun.body).map((e) => [e.runId, e.data.state]),
    [
      ['r1', 'running'],
      ['r1', 'done'],
    ],
  );
  assert.equal((await app.inject({ url: '/v1/events?follow=false' })).statusCode, 401);
});

void test('a run’s health checks are health events of the stream, with the run and the LC', async (t) => {
  const { app, db, reader } = await setup(t);
  const record = runEventRecorder(new EventLog(db));
  record({ runId: 'r7', step: 'check-standby', state: 'running' });
  record({
    runId: 'r7',
    step: 'check-standby',
    state: 'note',
    message: 'health of lc2: ok',
    health: {
      lc: 'lc2',
      phase: 'standby',
      check: 'http',
      target: '198.18.0.12',
      port: 80,
      ok: true,
      detail: 'GET http://198.18.0.12:80/health answered 200, expected 200',
      attempts: 2,
    },
  });
  const res = await app.inject({ url: '/v1/events?run=r7&follow=false', headers: bearer(reader) });
  const events = res.body
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map(
      (l) =>
        JSON.parse(l.slice(6)) as { type: string; runId: string; lc: string; data: Record<string, unknown> },
    );
  assert.deepEqual(
    events.map((e) => e.type),
    ['run.step', 'health'],
  );
  const health = events[1];
  assert.equal(health?.lc, 'lc2');
  assert.equal(health?.runId, 'r7');
  assert.deepEqual(
    [health?.data.step, health?.data.phase, health?.data.ok, health?.data.attempts],
    ['check-standby', 'standby', true, 2],
  );
});

void test('live: an event appended while a client follows reaches it at once', async (t) => {
  const { app, db, reader } = await setup(t);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const log = new EventLog(db);
  const controller = new AbortController();
  t.after(() => controller.abort());
  const res = await fetch(`${url}/v1/events`, { headers: bearer(reader), signal: controller.signal });
  assert.equal(res.status, 200);
  const reader2 = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  const appended = log.append({
    type: 'run.step',
    runId: 'r9',
    data: { step: 'switch', state: 'done', durationMs: 5 },
  });
  const started = performance.now();
  while (!text.includes(`id: ${appended.id}\n`)) {
    const { value, done } = await reader2.read();
    if (done) break;
    text += decoder.decode(value);
  }
  assert.ok(text.includes(`id: ${appended.id}\n`), 'the event arrived');
  assert.ok(performance.now() - started < 1000, 'within a second');
  controller.abort();
});
