/**
 * A switch on its own through the daemon: `understudy --api … switch` and `POST /v1/switches` on a
 * real host with LC1 serving under load. The service moves with its data and no failed request;
 * every phase is an event of the stream; errors are the ones the local command gives. A switch the
 * CLI runs on its own is sampled for traffic by serve and charted on the console's switch page.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLc } from '../../../src/inventory/index.ts';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { createRunFixture, type RunFixture } from '../run/run-fixture.ts';
import { startServe, type ServeProcess } from './serve-fixture.ts';
import { consoleArtifacts, openChromium } from '../console/chromium.ts';

describe('switches through the API', { timeout: 300_000 }, () => {
  let f: RunFixture;
  let serve: ServeProcess;
  before(async () => {
    f = await createRunFixture();
    await f.t.host.driver.start(getLc(f.t.app.db, 'lc2'));
    await f.t.host.driver.waitUntilUp('lc2');
    serve = await startServe(f.t.stateDir);
  });
  after(async () => {
    await serve?.stop();
    await f?.dispose();
  });

  test('understudy --api switch --follow: one JSON object per phase, the service moves with its data, 0 failed requests', async () => {
    assert.equal(await f.put('/kv/k', 'from lc1'), 200);
    const load = await f.load(200);
    const out = await f.t.cli([
      '--api',
      serve.base,
      '--json',
      'switch',
      'lc1',
      'lc2',
      '--method',
      'instant',
      '--stateful',
      '--follow',
    ]);
    const report = await load.stop();
    const lines = out.stdout
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { step?: string; state?: string; result?: { id: string; outcome: string } },
      );
    const result = lines.at(-1)?.result;
    assert.equal(result?.outcome, 'switched', out.stdout);
    const phases = lines.slice(0, -1);
    assert.ok(phases.length >= 3, `phases shown: ${out.stdout}`);
    assert.ok(phases.every((p) => p.state === 'done' && p.step?.startsWith('switch ')));
    assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
    const moved = await f.get('/kv/k');
    assert.equal(moved.servedBy, 'lc2');
    assert.equal(moved.body, 'from lc1', 'the final sync carried the data over');
    assert.equal(getLc(f.t.app.db, 'lc2').role, 'active');

    // The stream has the same phases with the switch's id, then its end.
    const events = (await serve.events()).filter((e) => e.type.startsWith('switch.'));
    const mine = events.filter((e) => e.data.switchId === result?.id);
    assert.deepEqual(
      mine.filter((e) => e.type === 'switch.phase').map((e) => `switch ${String(e.data.phase)}`),
      phases.map((p) => p.step),
    );
    assert.equal(mine.at(-1)?.type, 'switch.state');
    assert.equal(mine.at(-1)?.data.state, 'switched');
    // Its health checks are events too: lc2's before the switch, the service's on lc2 after it.
    const health = (await serve.events()).filter(
      (e) => e.type === 'health' && e.data.from === 'lc1' && e.data.to === 'lc2',
    );
    assert.deepEqual(
      health.map((e) => [e.data.phase, e.data.lc, e.data.ok]),
      [
        ['before', 'lc2', true],
        ['after', 'lc2', true],
      ],
      JSON.stringify(health),
    );
    assert.equal(health.at(-1)?.data.switchId, result?.id);
    // Once LC2 serves, the daemon compares its data disks whole with LC1's at the cut (background).
    const verified = await waitFor(
      async () => {
        const found = (await serve.events()).filter(
          (e) => e.type === 'verify.tree' && e.data.switchId === result?.id,
        );
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.ok(verified, 'a verify.tree event for the switch');
    assert.deepEqual(
      verified.map((e) => e.data.result),
      verified.map(() => 'ok'),
      JSON.stringify(verified.map((e) => e.data)),
    );
    const record = await serve.api<{ switch: { state: string } }>('GET', `/v1/switches/${result?.id}`);
    assert.equal(record.body.switch.state, 'switched');
    const audit = await serve.api<{ entries: { action: string; target: string; status: number }[] }>(
      'GET',
      '/v1/audit',
    );
    assert.ok(
      audit.body.entries.some(
        (e) => e.action === 'POST /v1/switches' && e.target === 'lc1 -> lc2' && e.status === 202,
      ),
      JSON.stringify(audit.body.entries),
    );
  });

  test('the errors of the local command: an LC that does not hold the address, an unknown method, a missing LC', async () => {
    const notHeld = await f.t.cli(
      ['--api', serve.base, '--json', 'switch', 'lc1', 'lc2', '--method', 'instant'],
      {
        okCodes: [1],
      },
    );
    const local = await f.t.cli(['--json', 'switch', 'lc1', 'lc2', '--method', 'instant'], { okCodes: [1] });
    const code = (s: string): string => (JSON.parse(s) as { error: { code: string } }).error.code;
    assert.equal(code(notHeld.stdout), 'SWITCH_ADDRESS_NOT_HELD');
    assert.equal(code(local.stdout), 'SWITCH_ADDRESS_NOT_HELD');
    const teleport = await serve.api<{ code: string; message: string }>('POST', '/v1/switches', {
      from: 'lc2',
      to: 'lc1',
      method: 'teleport',
    });
    assert.equal(teleport.status, 400);
    assert.equal(teleport.body.code, 'SWITCH_METHOD_UNKNOWN');
    const badDrain = await serve.api<{ code: string; message: string }>('POST', '/v1/switches', {
      from: 'lc2',
      to: 'lc1',
      method: 'instant',
      drainTimeoutMs: -1,
    });
    assert.equal(badDrain.status, 400);
    assert.match(badDrain.body.message, /body\.drainTimeoutMs/);
    const missing = await serve.api<{ code: string }>('POST', '/v1/switches', {
      from: 'lc9',
      to: 'lc1',
      method: 'instant',
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'LC_NOT_FOUND');
  });

  test('POST /v1/switches moves the service back (swap-address); the answer comes once the switch has its id', async () => {
    const after0 = (await serve.events()).at(-1)?.id ?? 0;
    const load = await f.load(200);
    const started = await serve.api<{ switch: { id: string } | null; eventsAfter: number }>(
      'POST',
      '/v1/switches',
      {
        from: 'lc2',
        to: 'lc1',
        method: 'swap-address',
        stateful: true,
      },
    );
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.switch?.id;
    assert.ok(id, 'the answer names the switch');
    assert.ok(started.body.eventsAfter >= after0);
    const end = await waitFor(
      async () =>
        (await serve.events(started.body.eventsAfter)).find(
          (e) => e.type === 'switch.state' && e.data.switchId === id,
        ),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const report = await load.stop();
    assert.equal(end?.data.state, 'switched', JSON.stringify(end));
    assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
    assert.equal((await f.get('/version')).servedBy, 'lc1');
  });

  test('a switch the CLI runs without the daemon: serve samples its traffic from the journal, the console’s switch page charts it', async () => {
    const load = await f.load(200);
    let samples: { id: number; data: Record<string, unknown> }[] | undefined;
    let result: { id: string; outcome: string };
    try {
      // No --api: the CLI drives the switch itself, on the same store serve reads.
      const out = await f.t.cli(['--json', 'switch', 'lc1', 'lc2', '--method', 'swap-address', '--stateful']);
      result = JSON.parse(out.stdout) as { id: string; outcome: string };
      assert.equal(result.outcome, 'switched', out.stdout);
      // The daemon samples a switch from the journal while it goes on and for 5 s after it ended:
      // the samples are complete once that tail has passed.
      await sleep(7_000);
      samples = (await serve.events()).filter((e) => e.type === 'traffic' && e.data.switchId === result.id);
    } finally {
      const report = await load.stop();
      assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
    }
    assert.ok(samples && samples.length >= 3, `at least 3 traffic samples: ${JSON.stringify(samples)}`);
    assert.equal((await f.get('/version')).servedBy, 'lc2');
    // Measured in the LCs once the switch is over: the client's 200 requests/s, all served by lc2.
    const last = samples.at(-1)?.data as {
      requestsPerSecond: number;
      lcs: { lc: string; requestsPerSecond: number | null }[];
    };
    assert.ok(
      last.requestsPerSecond >= 120 && last.requestsPerSecond <= 320,
      JSON.stringify(samples.map((e) => e.data.requestsPerSecond)),
    );
    assert.ok((last.lcs.find((l) => l.lc === 'lc2')?.requestsPerSecond ?? 0) >= 120, JSON.stringify(last));
    assert.ok(samples.every((e) => e.data.switchId === result.id));
    // The CLI's own phases carry the switch's id, as the daemon's do, and end with its state.
    const stream = await serve.events();
    const record = await serve.api<{ switch: { steps: { name: string }[] } }>(
      'GET',
      `/v1/switches/${result.id}`,
    );
    const mine = stream.filter((e) => e.type.startsWith('switch.') && e.data.switchId === result.id);
    assert.deepEqual(
      mine.filter((e) => e.type === 'switch.phase').map((e) => e.data.phase),
      record.body.switch.steps.map((s) => s.name),
    );
    assert.ok(
      stream.every((e) => e.type !== 'switch.phase' || e.data.switchId),
      'no switch phase without its id',
    );
    assert.equal(mine.at(-1)?.type, 'switch.state');
    assert.equal(mine.at(-1)?.data.state, 'switched');
    const health = stream.filter((e) => e.type === 'health' && e.data.from === 'lc1' && e.data.to === 'lc2');
    assert.deepEqual(
      health.slice(-2).map((e) => [e.data.phase, e.data.lc, e.data.ok]),
      [
        ['before', 'lc2', true],
        ['after', 'lc2', true],
      ],
    );
    assert.equal(health.at(-1)?.data.switchId, result.id);

    // The console: the switch is listed, its page has its steps and the samples for the chart.
    const cookie = { cookie: `understudy_token=${encodeURIComponent(serve.token)}` };
    const list = await (await fetch(`${serve.base}/switches`, { headers: cookie })).text();
    assert.match(list, new RegExp(`href="/switches/${result.id}"`));
    const pageRes = await fetch(`${serve.base}/switches/${result.id}`, { headers: cookie });
    assert.equal(pageRes.status, 200);
    const pageHtml = await pageRes.text();
    assert.match(pageHtml, /<strong>lc1<\/strong> → <strong>lc2<\/strong>\s+by\s+swap-address/);
    assert.match(pageHtml, /id="traffic-summary"/);
    const attribute = /data-samples="([^"]*)"/.exec(pageHtml)?.[1] ?? '[]';
    const drawn = JSON.parse(attribute.replace(/&quot;/g, '"')) as [number, number, number][];
    const stored = (await serve.events()).filter(
      (e) => e.type === 'traffic' && e.data.switchId === result.id,
    );
    assert.deepEqual(
      drawn.map((d) => d[1]),
      stored.map((e) => e.data.requestsPerSecond),
      'the page charts every sample the daemon stored for this switch',
    );
    for (const step of record.body.switch.steps)
      assert.match(pageHtml, new RegExp(`data-step="${step.name}"`));

    // In Chromium: the chart is drawn from those samples; the page is kept as a test artifact.
    const browser = await openChromium();
    try {
      await browser.context.addCookies([
        { name: 'understudy_token', value: encodeURIComponent(serve.token), url: serve.base },
      ]);
      await browser.page.goto(`${serve.base}/switches/${result.id}`);
      await browser.page.locator('#traffic-chart canvas').first().waitFor({ timeout: 10_000 });
      fs.mkdirSync(consoleArtifacts, { recursive: true });
      await browser.page.screenshot({ path: path.join(consoleArtifacts, 'switch.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
