// The console's pages over a real store, driven by fastify inject: sign-in sets an HttpOnly,
// SameSite=Strict cookie; pages render without JavaScript; forms need the admin scope and the
// page's CSRF token; every console change is audited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/core/index.ts';
import { buildApi, createApiToken, listAudit } from '../../../src/api/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { issueChallenge } from '../../../src/mail/index.ts';
import { insertLc } from '../../../src/inventory/index.ts';
import { EventLog } from '../../../src/events/index.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

async function setup(t: { after: (fn: () => unknown) => void }) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-console-'));
  const config = resolveMonitorConfig(
    { administrators: [{ name: 'alice', email: 'a@x.test', secret: randomBytes(32).toString('hex') }] },
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
  const app = buildApi({ db, catalogue, monitor, config, logger: silentLogger });
  t.after(async () => {
    await app.close();
    db.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  return { app, db };
}

const squash = (s: string): string =>
  s.replace(/\s+/g, ' ').replace(/>\s+/g, '>').replace(/\s+</g, '<').replace(/\s+>/g, '>');
const cookieOf = (setCookie: string | string[] | undefined): string => String(setCookie).split(';')[0] ?? '';

void test('console: sign in, read the pages without JavaScript, forms need admin and CSRF', async (t) => {
  const { app, db } = await setup(t);
  const admin = createApiToken(db, { operator: 'ada', scope: 'admin' }).token;
  const reader = createApiToken(db, { operator: 'rick', scope: 'read' }).token;
  issueChallenge(db, { admin: 'alice', patches: ['p1'], ttlMs: 3600_000, now: new Date() });

  const anonymous = await app.inject({ url: '/' });
  assert.equal(anonymous.statusCode, 303);
  assert.match(String(anonymous.headers.location), /^\/login/);
  const login = await app.inject({ url: '/login' });
  assert.match(squash(login.body), /<label for="token">API token<\/label>/);
  const refused = await app.inject({ method: 'POST', url: '/login', payload: { token: 'us_wrong' } });
  assert.equal(refused.statusCode, 401);

  const signIn = async (token: string) => {
    const res = await app.inject({ method: 'POST', url: '/login', payload: { token, next: '/' } });
    assert.equal(res.statusCode, 303);
    const setCookie = String(res.headers['set-cookie']);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    return { cookie: cookieOf(res.headers['set-cookie']) };
  };
  const asAdmin = await signIn(admin);
  const asReader = await signIn(reader);

  const overview = await app.inject({ url: '/', headers: asAdmin });
  assert.equal(overview.statusCode, 200);
  // No fleet control plane configured: the navigation does not link /fleet (which is not served).
  assert.match(overview.body, /<nav aria-label="main">/);
  assert.doesNotMatch(overview.body, /href="\/fleet"/);
  assert.equal((await app.inject({ url: '/fleet', headers: asAdmin })).statusCode, 404);
  for (const heading of [
    'Overview',
    'Host',
    'Logical computers',
    'Start a patch run',
    'Patch runs',
    'Approval queue',
  ])
    assert.match(squash(overview.body), new RegExp(`<h[12][^>]*>${heading}</h[12]>`), heading);
  assert.match(overview.body, /<meta name="viewport"/);
  assert.match(squash(overview.body), /<label for="code-[0-9a-f]{8}">Approval code of alice<\/label>/);
  const readerView = await app.inject({ url: '/', headers: asReader });
  assert.ok(!readerView.body.includes('Start a patch run'), 'no change forms for a read-only operator');
  assert.match(squash(readerView.body), /Deciding needs an admin token/);
  for (const url of ['/runs', '/approvals', '/audit', '/ui/part/lcs', '/ui/part/host'])
    assert.equal((await app.inject({ url, headers: asReader })).statusCode, 200, url);
  assert.equal((await app.inject({ url: '/runs/r000-none', headers: asReader })).statusCode, 404);
  // One LC's page: linked from the overview, with its resources and the health checks runs made.
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
  new EventLog(db).append({
    type: 'health',
    runId: 'r1',
    lc: 'lc1',
    data: { phase: 'standby', lc: 'lc1', check: 'http', ok: true, detail: 'GET answered 200', attempts: 1 },
  });
  assert.match((await app.inject({ url: '/', headers: asReader })).body, /<a href="\/lcs\/lc1">lc1<\/a>/);
  const lcPage = await app.inject({ url: '/lcs/lc1', headers: asReader });
  assert.equal(lcPage.statusCode, 200);
  assert.match(squash(lcPage.body), /<h1 id="lc-h">Logical computer lc1<\/h1>/);
  assert.match(lcPage.body, /198\.18\.0\.11\/24/);
  assert.match(squash(lcPage.body), /standby of ?<a href="\/runs\/r1">r1<\/a>/);
  assert.equal((await app.inject({ url: '/ui/part/lc/lc1', headers: asReader })).statusCode, 200);
  assert.equal((await app.inject({ url: '/lcs/none', headers: asReader })).statusCode, 404);
  // The event stream accepts the session cookie (EventSource cannot send headers).
  assert.equal((await app.inject({ url: '/v1/events?follow=false', headers: asReader })).statusCode, 200);

  const csrf = /name="csrf"\s+value="([0-9a-f]{32})"/.exec(overview.body)?.[1];
  assert.ok(csrf);
  const form = (cookie: string, payload: string) => ({
    method: 'POST' as const,
    url: '/ui/runs',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload,
  });
  const noCsrf = await app.inject(form(asAdmin.cookie, 'lc=lc1&method=instant'));
  assert.equal(noCsrf.statusCode, 403);
  assert.match(squash(noCsrf.body), /stale or was not sent by this console/);
  const readOnly = await app.inject(form(asReader.cookie, `lc=lc1&csrf=${csrf}`));
  assert.equal(readOnly.statusCode, 403);
  const noHost = await app.inject(form(asAdmin.cookie, `lc=lc1&method=instant&csrf=${csrf}`));
  assert.equal(noHost.statusCode, 409);
  assert.match(noHost.body, /HOST_NOT_INITIALISED/);
  const badCode = await app.inject({
    method: 'POST',
    url: '/ui/approvals',
    headers: { cookie: asAdmin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `csrf=${csrf}&admin=alice&challenge=${'0'.repeat(32)}&decision=approve-all&code=12345678`,
  });
  assert.equal(badCode.statusCode, 403);
  const audit = listAudit(db);
  assert.deepEqual(
    audit.map((e) => [e.operator, e.action, e.status]),
    [
      ['ada', 'console approval', 403],
      ['ada', 'console start run', 409],
      ['rick', 'console start run', 403],
      ['ada', 'console start run', 403],
    ],
  );
  assert.ok(!JSON.stringify(audit).includes('12345678'), 'approval codes are not kept');
  const htmx = await app.inject({ url: '/assets/htmx.min.js' });
  assert.equal(htmx.statusCode, 200);
  assert.match(String(htmx.headers['content-type']), /javascript/);
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: asAdmin });
  assert.match(String(logout.headers['set-cookie']), /Max-Age=0/);
});
