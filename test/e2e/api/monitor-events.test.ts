/**
 * The patch monitor's own schedule on the event stream: with real servers (an HTTP patch server and
 * an SMTP server delivering to dovecot's Maildir), the daemon's scheduled poll starts and ends as
 * events, the new patch it found and the mail it sent are events, a poll asked for through the API
 * is told apart from a scheduled one, and the console's monitor section shows them — as HTML without
 * JavaScript, and in Debian's Chromium, where the scheduled polls arrive live (screenshot
 * `test-artifacts/console/monitor.png`, the one in docs/console.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { createLogger, silentLogger, waitFor } from '../../../src/core/index.ts';
import { runDaemon, sessionCookie } from '../../../src/api/index.ts';
import { openApp } from '../../../src/app/index.ts';
import { addFeed } from '../../../src/monitor/index.ts';
import { PatchServerDir, startHttpServer, tempDir } from '../monitor/fixtures.ts';
import { startMailWorld } from '../mail/mail-servers.ts';
import { createTestCa } from '../../helpers/test-ca.ts';
import { consoleArtifacts, openChromium } from '../console/chromium.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

interface Streamed {
  id: number;
  type: string;
  data: Record<string, unknown>;
}

void test(
  'scheduled polls, new patches and mails are events of the stream and lines of the console',
  { timeout: 120_000 },
  async (t) => {
    const caDir = tempDir('us-mon-ev-ca');
    t.after(() => fs.rmSync(caDir, { recursive: true, force: true }));
    const ca = await createTestCa(caDir);
    const world = await startMailWorld(['understudy', 'alice'], {
      tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
    });
    t.after(() => world.close());
    const served = tempDir('us-mon-ev');
    t.after(() => fs.rmSync(served, { recursive: true, force: true }));
    const patchServer = new PatchServerDir(served);
    const http = await startHttpServer(served);
    t.after(() => http.close());
    const stateDir = tempDir('us-mon-ev-state');
    t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    const token = `us_test_${randomBytes(24).toString('hex')}`;
    const configPath = path.join(stateDir, 'monitor.yaml');
    fs.writeFileSync(
      configPath,
      stringify({
        api: { listen: '127.0.0.1', port: 0, token },
        mail: {
          from: `understudy@${world.domain}`,
          smtp: { host: '127.0.0.1', port: world.smtpPort, caFile: ca.caCert },
        },
        administrators: [
          { name: 'alice', email: `alice@${world.domain}`, secret: randomBytes(32).toString('hex') },
        ],
        monitor: { tickMs: 100 },
      }),
    );
    {
      const { db } = openMonitorStore(stateDir);
      addFeed(db, {
        name: 'vendor',
        kind: 'patch-server',
        url: http.url,
        intervalSeconds: 1,
        options: { publicKey: patchServer.publicKeyBase64 },
      });
      db.close();
    }
    const app = openApp(stateDir);
    const daemon = await runDaemon({
      manager: app,
      stateDir,
      configPath,
      logger: process.env.DEBUG_LOG ? createLogger({ pretty: false, level: 'debug' }) : silentLogger,
      port: 0,
    });
    t.after(async () => {
      await daemon.close();
      app.close();
    });
    const headers = { authorization: `Bearer ${token}` };
    const stream = async (): Promise<Streamed[]> => {
      const res = await fetch(`${daemon.url}/v1/events?after=0&follow=false`, { headers });
      return (await res.text())
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as Streamed);
    };
    const monitorEvents = async (): Promise<Streamed[]> =>
      (await stream()).filter((e) => e.type.startsWith('monitor.'));

    // A scheduled poll with nothing new: it starts and ends as events.
    const firstEnd = await waitFor(
      async () => (await monitorEvents()).find((e) => e.data.phase === 'poll.ended'),
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.ok(firstEnd, 'a scheduled poll ended');
    assert.equal(firstEnd.data.trigger, 'schedule');
    assert.equal(firstEnd.data.feed, 'vendor');
    assert.deepEqual(firstEnd.data.registered, []);

    // A patch appears: the next scheduled poll finds it, and alice is mailed about it.
    patchServer.add({ name: 'openssl-fix', content: 'fix\n', categories: ['security'] });
    const mailed = await waitFor(async () => (await monitorEvents()).find((e) => e.type === 'monitor.mail'), {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    assert.ok(mailed, `the mail is an event: ${JSON.stringify(await monitorEvents())}`);
    assert.equal(mailed.data.phase, 'mail.sent');
    assert.equal(mailed.data.admin, 'alice');
    assert.deepEqual(mailed.data.patches, ['openssl-fix']);
    const inbox = await waitFor(async () => ((await world.inbox('alice')).length > 0 ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    assert.ok(inbox, 'the mail the event reports did arrive');
    const events = await monitorEvents();
    const found = events.find((e) => e.data.phase === 'patches.found');
    assert.deepEqual(found?.data.patches, ['openssl-fix']);
    const ended = events.find(
      (e) => e.data.phase === 'poll.ended' && (e.data.registered as string[]).includes('openssl-fix'),
    );
    assert.equal(ended?.data.trigger, 'schedule');
    assert.equal(ended?.data.outcome, 'ok');
    // Every poll that ended had started, in order, one at a time.
    const polls = events.filter((e) => String(e.data.phase).startsWith('poll.'));
    for (let i = 0; i + 1 < polls.length; i += 2) {
      assert.equal(polls[i]?.data.phase, 'poll.started', JSON.stringify(polls.slice(i, i + 2)));
      assert.equal(polls[i + 1]?.data.phase, 'poll.ended');
    }
    assert.ok((found?.id ?? 0) > (ended?.id ?? 0) && (mailed.id ?? 0) > (found?.id ?? 0));

    // A poll asked for through the API is told apart from the schedule's.
    const before = (await stream()).at(-1)?.id ?? 0;
    const asked = await fetch(`${daemon.url}/v1/monitor/poll`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ feed: 'vendor' }),
    });
    assert.equal(asked.status, 200);
    const after = (await stream()).filter((e) => e.id > before && e.type === 'monitor.poll');
    assert.ok(
      after.some((e) => e.data.phase === 'poll.ended' && e.data.trigger === 'request'),
      JSON.stringify(after),
    );

    // The console's monitor section (server-rendered, readable without JavaScript) lists them.
    const page = await fetch(`${daemon.url}/monitor`, {
      headers: { cookie: `${sessionCookie}=${encodeURIComponent(token)}` },
    });
    assert.equal(page.status, 200);
    const htmlText = await page.text();
    assert.match(htmlText, /new patches on vendor: openssl-fix/);
    assert.match(htmlText, /mailed alice about openssl-fix/);
    assert.match(htmlText, /poll of vendor ended: ok in \d+ ms, 1 new/);
    assert.match(htmlText, /\(scheduled\)/);
    assert.match(htmlText, /\(asked for\)/);

    // The same page in a real browser: the lines are there, and the schedule's next polls arrive
    // live from the event stream (no reload), as items newer than any the page was served with.
    const browser = await openChromium();
    t.after(() => browser.close());
    const { context, page: tab } = browser;
    await context.addCookies([{ name: sessionCookie, value: encodeURIComponent(token), url: daemon.url }]);
    await tab.goto(`${daemon.url}/monitor`);
    assert.equal(await tab.locator('h1').textContent(), 'Patch monitor');
    const ids = async (): Promise<number[]> =>
      (await tab.locator('#monitor li[data-event]').evaluateAll((lis) => lis.map((li) => li.dataset.event)))
        .map(Number)
        .filter((n) => n > 0);
    const newest = Math.max(...(await ids()));
    assert.ok(newest > 0, 'the page lists the monitor’s events');
    await tab
      .getByText(/poll of vendor ended: ok in \d+ ms/)
      .first()
      .waitFor();
    await tab.waitForFunction(
      (last) =>
        Array.from(document.querySelectorAll<HTMLElement>('#monitor li[data-event]')).some(
          (li) => Number(li.dataset.event) > last && li.dataset.phase === 'poll.ended',
        ),
      newest,
      { timeout: 15_000 },
    );
    assert.ok(Math.max(...(await ids())) > newest, 'a later poll appeared without a reload');
    assert.match((await tab.locator('#live-status').textContent()) ?? '', /^live · last event \d+/);
    fs.mkdirSync(consoleArtifacts, { recursive: true });
    await tab.screenshot({ path: path.join(consoleArtifacts, 'monitor.png'), fullPage: true });
  },
);
