// The HTTP API driven in-process (fastify inject) on a real SQLite store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/core/index.ts';
import { buildApi } from '../../../src/api/index.ts';
import { sha256Hex } from '../../../src/catalogue/index.ts';
import { insertLc } from '../../../src/inventory/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { computeApprovalCode, issueChallenge, signApprovalLink } from '../../../src/mail/index.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

async function setup(t: { after: (fn: () => unknown) => void }) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-api-'));
  const secret = randomBytes(32).toString('hex');
  const linkSecret = randomBytes(32).toString('hex');
  const config = resolveMonitorConfig(
    {
      api: {
        token: 'tok-123-0123456789abcdef0123456789abcdef',
        linkSecret,
        publicUrl: 'http://127.0.0.1:8642',
      },
      administrators: [{ name: 'alice', email: 'alice@example.test', secret }],
    },
    stateDir,
  );
  const { db, catalogue } = openMonitorStore(stateDir);
  const runs: string[][] = [];
  const monitor = createMonitor({
    db,
    catalogue,
    config,
    stateDir,
    fetcher: realFetcher,
    managedLcs: { list: async () => ['lc1'], installedPackages: async () => new Map() },
    startPatchRun: async (r) => void runs.push(r.lcs),
    logger: silentLogger,
  });
  const app = buildApi({ db, catalogue, monitor, config, logger: silentLogger });
  t.after(async () => {
    await app.close();
    db.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  for (const name of ['p1', 'p2']) {
    const file = path.join(stateDir, name);
    fs.writeFileSync(file, name);
    await catalogue.registerPatch({
      file,
      name,
      categories: ['security'],
      format: 'script',
      sha256: sha256Hex(name),
    });
  }
  return {
    app,
    db,
    catalogue,
    runs,
    secret: Buffer.from(secret, 'hex'),
    linkSecret: Buffer.from(linkSecret, 'hex'),
  };
}

const auth = { authorization: 'Bearer tok-123-0123456789abcdef0123456789abcdef' };

void test('every route but health needs the token; errors have the documented shape', async (t) => {
  const { app, db } = await setup(t);
  assert.equal((await app.inject({ url: '/v1/health' })).statusCode, 200);
  for (const headers of [
    {},
    { authorization: 'Bearer tok-12' },
    { authorization: 'Basic tok-123-0123456789abcdef0123456789abcdef' },
  ]) {
    const res = await app.inject({ url: '/v1/patches', headers });
    assert.equal(res.statusCode, 401);
    assert.deepEqual(Object.keys(res.json() as object).sort(), [
      'code',
      'error',
      'hint',
      'message',
      'statusCode',
    ]);
    assert.equal((res.json() as { code: string }).code, 'API_UNAUTHORIZED');
  }
  const list = await app.inject({ url: '/v1/patches', headers: auth });
  assert.deepEqual(
    (list.json() as { patches: { name: string }[] }).patches.map((p) => p.name),
    ['p1', 'p2'],
  );
  const missing = await app.inject({ url: '/v1/patches/nope', headers: auth });
  assert.equal(missing.statusCode, 404);
  assert.equal((missing.json() as { code: string }).code, 'PATCH_NOT_FOUND');
  const bad = await app.inject({
    method: 'POST',
    url: '/v1/patches/p1/next-run',
    headers: auth,
    payload: { lc: 'lc1' },
  });
  assert.equal(bad.statusCode, 400);
  // Marking needs the LC in the resource table.
  insertLc(db, {
    name: 'lc1',
    driver: 'namespace',
    image: 'busybox',
    cpus: '0',
    cpuSharePercent: 100,
    memoryMb: 128,
    role: 'active',
    disks: [{ name: 'system', pool: 'main', sizeMb: 1024, mountPath: '/' }],
    nics: [{ name: 'eth0', mac: '02:00:00:00:00:01', addresses: ['198.18.0.11/24'], bridge: 'br0' }],
  });
  const ok = await app.inject({
    method: 'POST',
    url: '/v1/patches/p1/next-run',
    headers: auth,
    payload: { lc: 'lc1', nextRun: true },
  });
  assert.equal((ok.json() as { state: { applyNextRun: boolean } }).state.applyNextRun, true);
});

void test('approval through the API needs the OCRA code and counts once', async (t) => {
  const { app, db, catalogue, runs, secret } = await setup(t);
  const c = issueChallenge(db, { admin: 'alice', patches: ['p1', 'p2'], ttlMs: 3600_000, now: new Date() });
  const wrong = await app.inject({
    method: 'POST',
    url: '/v1/approvals',
    headers: auth,
    payload: { admin: 'alice', challenge: c.challenge, decision: 'approve: p2', code: '00000000' },
  });
  assert.equal(wrong.statusCode, 403);
  assert.match((wrong.json() as { message: string }).message, /code is wrong/);
  const code = computeApprovalCode({
    secret,
    challenge: c.challenge,
    decision: { kind: 'approve', patches: ['p2'] },
  });
  const payload = { admin: 'alice', challenge: c.challenge, decision: 'approve: p2', code };
  const good = await app.inject({ method: 'POST', url: '/v1/approvals', headers: auth, payload });
  assert.equal(good.statusCode, 200, good.body);
  assert.deepEqual(
    catalogue.patchesForNextRun('lc1').map((p) => p.name),
    ['p2'],
    'only the approved subset',
  );
  assert.deepEqual(runs, [['lc1']]);
  const again = await app.inject({ method: 'POST', url: '/v1/approvals', headers: auth, payload });
  assert.match((again.json() as { message: string }).message, /already been used/);
});

void test('signed approval links: GET shows, POST applies once; forged or expired links are refused', async (t) => {
  const { app, db, catalogue, linkSecret } = await setup(t);
  const c = issueChallenge(db, { admin: 'alice', patches: ['p1'], ttlMs: 3600_000, now: new Date() });
  const token = signApprovalLink(linkSecret, {
    challenge: c.challenge,
    decision: { kind: 'approve-all' },
    admin: 'alice',
    expiresAt: Date.now() + 3600_000,
  });
  const page = await app.inject({ url: `/v1/approvals/link?t=${token}` });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<form method="post"/);
  assert.deepEqual(
    catalogue.patchesForNextRun('lc1'),
    [],
    'GET changes nothing (mail scanners prefetch links)',
  );
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const post = await app.inject({
    method: 'POST',
    url: '/v1/approvals/link',
    headers: form,
    payload: `t=${token}`,
  });
  assert.equal(post.statusCode, 200, post.body);
  assert.deepEqual(
    catalogue.patchesForNextRun('lc1').map((p) => p.name),
    ['p1'],
  );
  const replay = await app.inject({
    method: 'POST',
    url: '/v1/approvals/link',
    headers: form,
    payload: `t=${token}`,
  });
  assert.equal(replay.statusCode, 403);
  const forged = `${token.split('.')[0]}.${'A'.repeat(43)}`;
  assert.equal(
    (await app.inject({ method: 'POST', url: '/v1/approvals/link', headers: form, payload: `t=${forged}` }))
      .statusCode,
    403,
  );
  const c2 = issueChallenge(db, { admin: 'alice', patches: ['p2'], ttlMs: 3600_000, now: new Date() });
  const old = signApprovalLink(linkSecret, {
    challenge: c2.challenge,
    decision: { kind: 'approve-all' },
    admin: 'alice',
    expiresAt: Date.now() - 1,
  });
  const expired = await app.inject({
    method: 'POST',
    url: '/v1/approvals/link',
    headers: form,
    payload: `t=${old}`,
  });
  assert.match((expired.json() as { message: string }).message, /expired/);
});
