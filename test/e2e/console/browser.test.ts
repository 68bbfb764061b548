/// <reference lib="dom" />
/**
 * The console in a real Chromium (Debian's package, driven by playwright-core; no browser download):
 * `serve` runs as a real process on a test host with LC1 serving and an idle standby; the operator
 * signs in, starts a patch run from the page, watches the steps turn green live, approves a pending
 * patch with the administrator's code, and the page agrees with the API. Accessibility basics
 * (labels, headings, contrast of the status colours) and a phone-sized viewport are checked.
 * Screenshots and figures go to test-artifacts/console/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { spawnProcess, waitFor, type SpawnedProcess } from '../../../src/core/index.ts';
import { computeApprovalCode, issueChallenge } from '../../../src/mail/index.ts';
import { openStore } from '../../../src/store/index.ts';
import { statePaths } from '../../../src/core/index.ts';
import { allSchemas } from '../../../src/app/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { freePort } from '../monitor/fixtures.ts';
import { createRunFixture, type RunFixture } from '../run/run-fixture.ts';

const artifacts = path.join(repoRoot, 'test-artifacts/console');
const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** WCAG contrast ratio of two CSS rgb() colours. */
function contrast(a: string, b: string): number {
  const lum = (c: string): number => {
    const [r, g, bl] = (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

describe('console in a real browser', { timeout: 600_000 }, () => {
  let f: RunFixture;
  let serve: SpawnedProcess;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  let token: string;
  let userDataDir: string;
  const adminSecret = randomBytes(32);
  const figures: Record<string, unknown> = {};

  before(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    f = await createRunFixture();
    await f.addVersionPatch();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    fs.writeFileSync(
      path.join(f.t.stateDir, 'monitor.yaml'),
      [
        'api:',
        '  listen: 127.0.0.1',
        `  port: ${port}`,
        'administrators:',
        `  - { name: alice, email: alice@example.test, secret: "${adminSecret.toString('hex')}" }`,
        '',
      ].join('\n'),
    );
    serve = spawnProcess(
      ['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', f.t.stateDir, 'serve'],
      { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const up = await waitFor(
      async () =>
        (await fetch(`${base}/v1/health`)
          .then((r) => r.ok)
          .catch(() => false)) || undefined,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    assert.ok(up, 'serve answers');
    token = fs.readFileSync(path.join(f.t.stateDir, 'api-token'), 'utf8').trim();
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: '/usr/bin/chromium',
      args: chromiumArgs,
      headless: true,
      viewport: { width: 1200, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM');
      const result = await Promise.race([serve.done, new Promise((r) => setTimeout(r, 60_000))]);
      if (!result) serve.child.kill('SIGKILL');
      await serve.done.catch(() => undefined);
    }
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    await f?.dispose();
    fs.writeFileSync(path.join(artifacts, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
  });

  const api = async <T>(url: string): Promise<T> => {
    const res = await fetch(`${base}${url}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, url);
    return (await res.json()) as T;
  };
  const shot = async (name: string): Promise<void> => {
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  };

  /** Every visible form control has a label; one h1; headings do not skip a level. */
  const checkAccessibility = async (where: string): Promise<void> => {
    const problems = await page.evaluate(() => {
      const out: string[] = [];
      for (const el of Array.from(document.querySelectorAll('input, select, textarea'))) {
        const input = el as HTMLInputElement;
        if (input.type === 'hidden') continue;
        const labelled =
          (input.id && document.querySelector(`label[for="${input.id}"]`)) ||
          input.closest('label') ||
          input.getAttribute('aria-label');
        if (!labelled) out.push(`unlabelled ${input.tagName} ${input.name}`);
      }
      const headings = Array.from(document.querySelectorAll('h1, h2, h3')).map((h) => Number(h.tagName[1]));
      if (headings.filter((h) => h === 1).length !== 1)
        out.push(`${headings.filter((h) => h === 1).length} h1`);
      headings.forEach((h, i) => {
        if (i > 0 && h > (headings[i - 1] as number) + 1) out.push(`heading h${h} after h${headings[i - 1]}`);
      });
      if (!document.documentElement.lang) out.push('no lang');
      return out;
    });
    assert.deepEqual(problems, [], `${where}: ${problems.join(', ')}`);
  };

  test('sign in; the overview shows the host, the LCs and their pending patches as the API does', async () => {
    const started = Date.now();
    await page.goto(`${base}/`);
    assert.match(page.url(), /\/login/);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/`);
    await page.waitForFunction(() => document.getElementById('live-status')?.textContent?.startsWith('live'));
    const timing = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
      return {
        loadMs: nav.loadEventEnd - nav.startTime,
        htmlBytes: nav.transferSize,
        totalBytes: nav.transferSize + resources.reduce((s, r) => s + r.transferSize, 0),
        resources: resources.length,
      };
    });
    figures.overviewFirstLoad = timing;
    figures.signInToLiveMs = Date.now() - started;
    const lcs = await api<{ lcs: { name: string; role: string; status: { state: string } }[] }>('/v1/lcs');
    for (const lc of lcs.lcs) {
      const row = page.locator(`#lc-${lc.name}`);
      await assert.doesNotReject(row.waitFor());
      const text = await row.innerText();
      assert.match(text, new RegExp(lc.role));
      assert.match(text, new RegExp(lc.status.state));
    }
    assert.match(await page.locator('#lc-lc1').innerText(), /security\s*demo-1\.0\.1 \(next run\)/);
    assert.match(await page.locator('#lc-lc1').innerText(), /healthy/);
    const host = await api<{ network: { bridge: string } }>('/v1/host');
    assert.match(await page.locator('#host').innerText(), new RegExp(host.network.bridge));
    await checkAccessibility('overview');
    await shot('overview');
    // The overview's two halves on their own: the host, and the LCs.
    await page.locator('#host').screenshot({ path: path.join(artifacts, 'host.png') });
    await page.locator('#lcs').screenshot({ path: path.join(artifacts, 'lcs.png') });
  });

  test('status colours have enough contrast (WCAG AA, 4.5:1)', async () => {
    const pairs = await page.evaluate(() => {
      const out: { cls: string; fg: string; bg: string }[] = [];
      for (const cls of [
        's-done',
        's-running',
        's-failed',
        's-pending',
        's-healthy',
        's-failing',
        's-security',
      ]) {
        const el = document.createElement('span');
        el.className = `badge ${cls}`;
        el.textContent = cls;
        document.body.append(el);
        const style = getComputedStyle(el);
        out.push({ cls, fg: style.color, bg: style.backgroundColor });
        el.remove();
      }
      return out;
    });
    for (const p of pairs)
      assert.ok(
        contrast(p.fg, p.bg) >= 4.5,
        `${p.cls}: ${p.fg} on ${p.bg} is ${contrast(p.fg, p.bg).toFixed(2)}:1`,
      );
    figures.statusContrast = Object.fromEntries(
      pairs.map((p) => [p.cls, Number(contrast(p.fg, p.bg).toFixed(2))]),
    );
  });

  test('start a patch run from the page under load; watch its steps turn green and the traffic chart move live', async () => {
    // A real client sends 200 requests/s through the whole run: the chart must show it.
    const load = await f.load(200);
    let loadStopped = false;
    const stopLoad = async () => {
      loadStopped = true;
      return load.stop();
    };
    try {
      await page.getByLabel('Logical computer', { exact: true }).selectOption('lc1');
      await page.getByLabel('Switch method').selectOption('instant');
      await page.getByLabel('Skip the virus scan').check();
      await page.getByRole('button', { name: 'Start run' }).click();
      await page.waitForURL(/\/runs\/r/);
      const runId = page.url().split('/').pop() as string;
      assert.match(await page.locator('#steps').innerText(), /701 find a standby/);
      await page.waitForFunction(
        () => document.getElementById('live-status')?.textContent?.startsWith('live'),
        undefined,
        { timeout: 10_000 },
      );
      // Wait for every step to be done, as the page shows it (updated from the event stream only).
      await page.waitForFunction(
        () => {
          const steps = Array.from(document.querySelectorAll('#steps .step'));
          return (
            steps.length > 0 &&
            steps.every((s) => s.classList.contains('s-done') || s.classList.contains('s-failed'))
          );
        },
        undefined,
        { timeout: 300_000, polling: 100 },
      );
      await shot('run');
      const run = (
        await api<{ run: { state: string; steps: { name: string; state: string; durationMs: number }[] } }>(
          `/v1/runs/${runId}`,
        )
      ).run;
      const pageSteps = await page.$$eval('#steps .step', (els) =>
        els.map((e) => [e.getAttribute('data-step'), e.querySelector('.state')?.textContent]),
      );
      assert.deepEqual(
        pageSteps,
        run.steps.map((s) => [s.name, s.state]),
        'the page shows what the API says',
      );
      assert.ok(
        run.steps.every((s) => s.state === 'done'),
        JSON.stringify(run.steps),
      );
      const shown = (
        await page.evaluate(
          () =>
            (window as unknown as { understudyShown: { at: string; state: string; shownAt: number }[] })
              .understudyShown,
        )
      ).filter((s) => s.state === 'done');
      assert.ok(shown.length >= run.steps.length - 1, `live updates seen: ${shown.length}`);
      const latencies = shown.map((s) => s.shownAt - Date.parse(s.at));
      figures.sseStepLatencyMs = {
        median: median(latencies),
        max: Math.max(...latencies),
        samples: latencies.length,
      };
      assert.ok(median(latencies) < 1000, `median latency ${median(latencies)} ms`);
      assert.ok(await page.locator('#copy-chart canvas').count(), 'the copy chart is drawn');
      // The daemon keeps sampling for 5 s after the run ended: where the traffic settled is charted.
      await new Promise((r) => setTimeout(r, 3000));
      const report = await stopLoad();
      assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
      // The traffic chart: samples taken by the daemon in the LCs arrived live and were drawn.
      const traffic = await page.evaluate(
        () =>
          (
            window as unknown as {
              understudyTraffic: {
                at: string;
                requestsPerSecond: number;
                resetsPerSecond: number;
                shownAt: number;
              }[];
            }
          ).understudyTraffic,
      );
      assert.ok(traffic.length >= 5, `traffic samples shown live: ${traffic.length}`);
      assert.ok(
        new Set(traffic.map((s) => s.shownAt)).size >= 5,
        'the chart moved: samples arrived at different times',
      );
      assert.ok(await page.locator('#traffic-chart canvas').count(), 'the traffic chart is drawn');
      const stored = (
        await (
          await fetch(`${base}/v1/events?run=${runId}&follow=false`, {
            headers: { authorization: `Bearer ${token}` },
          })
        ).text()
      )
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map(
          (l) =>
            JSON.parse(l.slice(6)) as {
              type: string;
              at: string;
              data: { requestsPerSecond: number; lcs: { lc: string; requestsPerSecond: number | null }[] };
            },
        )
        .filter((e) => e.type === 'traffic');
      for (const shownSample of traffic)
        assert.ok(
          stored.some(
            (e) => e.at === shownSample.at && e.data.requestsPerSecond === shownSample.requestsPerSecond,
          ),
          'every point drawn is a sample the daemon stored',
        );
      // The rate the daemon measured is the client's: 200 requests/s give about 200 served/s.
      const rates = stored.map((e) => e.data.requestsPerSecond).sort((a, b) => a - b);
      const medianRate = rates[Math.floor(rates.length / 2)] ?? 0;
      assert.ok(medianRate > 120 && medianRate < 320, `median requests/s ${medianRate} for a load of 200/s`);
      // The service moved: lc2 served during the run's last samples, after the switch.
      assert.ok(
        stored.some((e) => e.data.lcs.some((l) => l.lc === 'lc2' && (l.requestsPerSecond ?? 0) > 50)),
        'lc2 served after the switch',
      );
      figures.trafficSamples = { samples: stored.length, medianRequestsPerSecond: medianRate, load: 200 };
      // The run finished: the state arrives by the section refresh.
      await page.waitForFunction(
        () => document.getElementById('run-state')?.textContent?.includes('switched'),
        undefined,
        { timeout: 10_000 },
      );
      const served = await f.get('/version');
      assert.equal(served.servedBy, 'lc2');
      assert.equal(served.version, '1.0.1');
      await checkAccessibility('run page');
      await shot('run-done');
    } finally {
      if (!loadStopped) await load.stop().catch(() => undefined);
    }
  });

  test('the runs, the LC that now serves and the switch journal have their pages', async () => {
    await page.goto(`${base}/runs`);
    const runs = await api<{ runs: { id: string }[] }>('/v1/runs');
    for (const r of runs.runs) assert.match(await page.locator('#runs').innerText(), new RegExp(r.id));
    await checkAccessibility('runs');
    await shot('runs');

    await page.goto(`${base}/lcs/lc2`);
    const lc2 = await api<{ lc: { role: string; status: { state: string } } }>('/v1/lcs/lc2');
    const text = await page.locator('#lc').innerText();
    assert.match(text, new RegExp(`role ${lc2.lc.role}`));
    assert.match(text, new RegExp(lc2.lc.status.state));
    // The run's health checks of lc2 (step 709, and after the switch) are listed on its page.
    assert.match(text, /standby of r/);
    assert.match(text, /stood in for lc1/);
    await checkAccessibility('LC page');
    await shot('lc');

    await page.goto(`${base}/switches`);
    const switches = await api<{ switches: { id: string }[] }>('/v1/switches');
    for (const sw of switches.switches.slice(0, 5))
      assert.match(await page.locator('#switches').innerText(), new RegExp(sw.id));
    await checkAccessibility('switches');
    await shot('switches');
  });

  test('approve a pending patch with the administrator’s code', async () => {
    // Issue a challenge in the daemon's store, as the monitor does when it mails a new patch.
    await f.addPatch('openssl-fix', 'script', '#!/bin/sh\nexit 0\n', 'lc2');
    f.catalogue.markNextRun('openssl-fix', 'lc2', false);
    const db = openStore(statePaths(f.t.stateDir).database, allSchemas);
    const challenge = (() => {
      try {
        return issueChallenge(db, {
          admin: 'alice',
          patches: ['openssl-fix'],
          ttlMs: 3600_000,
          now: new Date(),
        });
      } finally {
        db.close();
      }
    })();
    await page.goto(`${base}/approvals`);
    const card = page.locator(`#challenge-${challenge.challenge.slice(0, 12)}`);
    await card.waitFor();
    await shot('approvals');
    const code = computeApprovalCode({
      secret: adminSecret,
      challenge: challenge.challenge,
      decision: { kind: 'approve-all' },
    });
    await card.getByLabel('Decision').selectOption('approve-all');
    await card.getByLabel('Approval code of alice').fill(code);
    await card.getByRole('button', { name: 'Decide' }).click();
    await page.waitForURL(`${base}/approvals`);
    assert.equal(await page.locator(`#challenge-${challenge.challenge.slice(0, 12)}`).count(), 0);
    const open = await api<{ open: unknown[] }>('/v1/approvals');
    assert.deepEqual(open.open, [], 'the API agrees: nothing waits');
    const patch = await api<{ lcs: { lc: string; applyNextRun: boolean }[] }>('/v1/patches/openssl-fix');
    assert.ok(
      patch.lcs.some((s) => s.lc === 'lc2'),
      JSON.stringify(patch.lcs),
    );
    await page.goto(`${base}/audit`);
    assert.match(await page.locator('#audit').innerText(), /console approval/);
    await checkAccessibility('audit');
    await shot('audit');
  });

  test('readable on a phone: no sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const url of ['/', '/runs', '/approvals']) {
      await page.goto(`${base}${url}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${url} scrolls sideways by ${overflow}px`);
    }
    await page.goto(`${base}/`);
    await shot('overview-phone');
  });
});
