/// <reference lib="dom" />
/**
 * The console's fleet pages in a real Chromium (Debian's package, driven by playwright-core):
 * `understudy serve --control-dir` runs as a real process next to a real PostgreSQL 15 (TLS) control
 * plane on which two agents (fake host runner) ran a rollout that halted in its second wave. The
 * operator is sent to sign in, lands on /fleet, sees the rollout and the hosts as the API has them
 * and every LC's compliance (the CSV export answers to the session),
 * follows the rollout's link and sees each wave's state and each LC's work. Screenshots go to
 * test-artifacts/console/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { createRollout, getRollout, startControlWorker, syncInventory } from '../../../src/fleet/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { freePort } from '../monitor/fixtures.ts';
import {
  createFakeAgents,
  spawnCliDaemon,
  startFleetDb,
  writeControlDir,
} from '../../helpers/fleet-fixture.ts';

const artifacts = path.join(repoRoot, 'test-artifacts/console');

test('fleet pages in a real browser: sign in, the rollouts and hosts, one rollout with its waves', async (t) => {
  fs.mkdirSync(artifacts, { recursive: true });
  const fx = await startFleetDb(t);
  const agents = await createFakeAgents(fx, {
    hosts: ['bh1', 'bh2'],
    pollMs: 150,
    failing: { bh2: ['lc-a'] },
  });
  await syncInventory(fx.db);
  const worker = await startControlWorker({ db: fx.db, tickMs: 200, pollIntervalMs: 200 });
  fx.defer(() => worker.stop());
  for (const a of agents) a.start();
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
  await sleep(500); // the work taken before the halt finishes

  // `understudy serve` next to the control plane (its control.json: where and as whom to connect).
  const controlDir = writeControlDir(fx);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fleet-console-'));
  t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  fs.writeFileSync(path.join(stateDir, 'monitor.yaml'), `api:\n  listen: 127.0.0.1\n  port: ${port}\n`);
  const serveLog: string[] = [];
  spawnCliDaemon(fx, ['--state-dir', stateDir, 'serve', '--control-dir', controlDir], {
    log: serveLog,
    stopMs: 60_000,
  });
  const up = await waitFor(
    async () =>
      (await fetch(`${base}/v1/health`)
        .then((r) => r.ok)
        .catch(() => false)) || undefined,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  assert.ok(up, `serve answers\n${serveLog.join('')}`);
  const token = fs.readFileSync(path.join(stateDir, 'api-token'), 'utf8').trim();
  const api = async <T>(url: string): Promise<T> => {
    const res = await fetch(`${base}${url}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, url);
    return (await res.json()) as T;
  };

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-chromium-'));
  t.after(() => fs.rmSync(userDataDir, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
    ],
    headless: true,
    viewport: { width: 1200, height: 900 },
  });
  fx.defer(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());

  await page.goto(`${base}/fleet`);
  assert.match(page.url(), /\/login\?next=%2Ffleet/);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/fleet`);
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Fleet');

  // The page agrees with the API.
  const { rollouts } = await api<{ rollouts: { id: number; state: string; reason: string }[] }>(
    '/v1/fleet/rollouts',
  );
  assert.equal(rollouts[0]?.state, 'halted');
  const rolloutRow = page.locator('#fleet-rollouts tbody tr').first();
  const rowText = await rolloutRow.innerText();
  assert.match(rowText, new RegExp(`${rollout.id} openssl`));
  assert.match(rowText, /halted/);
  assert.match(rowText, new RegExp(rollouts[0]?.reason ?? 'no reason'));
  const { hosts } = await api<{ hosts: { id: string }[] }>('/v1/fleet/hosts');
  const hostRows = await page.locator('#fleet-hosts tbody tr td:first-child').allInnerTexts();
  assert.deepEqual(
    hostRows.map((h) => h.trim()),
    hosts.map((h) => h.id),
  );
  // Compliance: every LC, the failed one with its pending patch; the CSV export answers to the session.
  const compliance = await page.locator('#fleet-compliance tbody tr').allInnerTexts();
  assert.equal(compliance.length, 4);
  assert.match(
    compliance.find((r) => /bh2\s+lc-a/.test(r)) ?? '',
    /bh2\s+lc-a\s+web\s+openssl-3\.0\.15 \([\d.]+\)\s+failed/,
  );
  const csv = await page.evaluate(async () => (await fetch('/v1/fleet/compliance?format=csv&by=lc')).text());
  assert.match(csv.split('\n')[0] ?? '', /^host,lc,group/);
  await page.screenshot({ path: path.join(artifacts, 'fleet.png'), fullPage: true });

  await page.getByRole('link', { name: `${rollout.id} openssl` }).click();
  await page.waitForURL(`${base}/fleet/rollouts/${rollout.id}`);
  const captions = (await page.locator('table.wave caption').allInnerTexts()).map((c) =>
    c.replace(/\s+/g, ' ').trim(),
  );
  assert.deepEqual(captions, ['canary done', 'wave 2 failed', 'wave 3 pending']);
  const failedRow = await page.locator('table.wave tr', { hasText: 'bh2' }).first().innerText();
  assert.match(failedRow, /bh2\s+lc-a\s+web\s+failed/);
  await page.screenshot({ path: path.join(artifacts, 'fleet-rollout.png'), fullPage: true });
});
