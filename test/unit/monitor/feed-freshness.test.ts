/**
 * A patch server's index, judged by time (fake feed, real SQLite in memory): a future date never
 * poisons the watermark, an index older than the last accepted one is a replay, a failed poll moves
 * nothing, and a feed that stops advancing is reported stale.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UnderstudyError, silentLogger, type Logger } from '../../../src/core/index.ts';
import { createCatalogue } from '../../../src/catalogue/index.ts';
import { openStore } from '../../../src/store/index.ts';
import {
  addFeed,
  createMonitor,
  ed25519PublicKeyBase64,
  getFeedState,
  resolveMonitorConfig,
  signPatchIndex,
  type Fetcher,
} from '../../../src/monitor/index.ts';
import { monitorSchemas } from '../../helpers/stores.ts';

const hour = 3600_000;

function world(
  t: { after: (f: () => void) => void },
  options: { logger?: Logger; clock?: { now: Date } } = {},
) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fresh-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = openStore(':memory:', monitorSchemas);
  t.after(() => db.close());
  const keys = generateKeyPairSync('ed25519');
  const files = new Map<string, Buffer>();
  const publish = (generated: Date, patches: { name: string; published: Date }[]): void => {
    const entries = patches.map((p) => {
      const content = Buffer.from(`${p.name}\n`);
      files.set(`/${p.name}`, content);
      return {
        name: p.name,
        categories: ['security'],
        published: p.published.toISOString(),
        description: '',
        sha256: createHash('sha256').update(content).digest('hex'),
        size: content.length,
        format: 'diff',
        file: p.name,
      };
    });
    const index = Buffer.from(
      JSON.stringify({ version: 1, generated: generated.toISOString(), patches: entries }),
    );
    files.set('/index.json', index);
    files.set('/index.json.sig', Buffer.from(signPatchIndex(index, keys.privateKey)));
  };
  const get = (url: string): Buffer => {
    const body = files.get(new URL(url).pathname);
    if (!body)
      throw new UnderstudyError('FEED_UNREACHABLE', `${url}: HTTP 404`, { details: { status: 404 } });
    return body;
  };
  const fetcher: Fetcher = {
    async fetch(r) {
      return { status: 'ok', body: get(r.url), etag: null, lastModified: null };
    },
    async download(r) {
      fs.writeFileSync(r.file, get(r.url));
      return { size: get(r.url).length };
    },
  };
  const clock = options.clock ?? { now: new Date() };
  const catalogue = createCatalogue({ db, patchesDir: path.join(dir, 'patches') });
  const monitor = createMonitor({
    db,
    catalogue,
    config: resolveMonitorConfig({ monitor: { feedStaleAfterHours: 24 } }, dir),
    stateDir: dir,
    fetcher,
    managedLcs: { list: async () => [], installedPackages: async () => new Map() },
    logger: options.logger ?? silentLogger,
    now: () => clock.now,
  });
  addFeed(db, {
    name: 'f',
    kind: 'patch-server',
    url: 'http://patches.invalid/',
    intervalSeconds: 60,
    options: { publicKey: ed25519PublicKeyBase64(keys.publicKey) },
  });
  return { db, catalogue, monitor, publish, clock, files };
}

test('finding 4: a patch dated in the future neither registers nor poisons the watermark', async (t) => {
  const { db, catalogue, monitor, publish, clock } = world(t);
  const now = clock.now;
  publish(now, [
    { name: 'ok1', published: new Date(now.getTime() - hour) },
    { name: 'future', published: new Date(now.getTime() + 365 * 24 * hour) },
  ]);
  const [first] = await monitor.pollNow('f');
  assert.deepEqual(first?.registeredNames, ['ok1']);
  assert.ok(!catalogue.hasPatch('future'), 'a patch from the future is not registered');
  const watermark = getFeedState(db, 'f').watermark;
  assert.ok(
    watermark && Date.parse(watermark) <= now.getTime(),
    `watermark ${watermark} is not in the future`,
  );
  // A patch published a bit later (still before "now") is found by the next poll.
  clock.now = new Date(now.getTime() + 2 * hour);
  publish(clock.now, [
    { name: 'ok1', published: new Date(now.getTime() - hour) },
    { name: 'ok2', published: new Date(now.getTime() + hour) },
  ]);
  const [second] = await monitor.pollNow('f');
  assert.deepEqual(second?.registeredNames, ['ok2']);
});

test('finding 4: a failed poll never moves the watermark, backwards or forwards', async (t) => {
  const { db, monitor, publish, clock, files } = world(t);
  const now = clock.now;
  publish(now, [{ name: 'ok1', published: new Date(now.getTime() - hour) }]);
  await monitor.pollNow('f');
  const before = getFeedState(db, 'f').watermark;
  // A newer index whose only new patch fails its sha256: the poll fails, the watermark stays.
  clock.now = new Date(now.getTime() + 2000);
  publish(clock.now, [
    { name: 'ok1', published: new Date(now.getTime() - hour) },
    { name: 'bad', published: new Date(now.getTime() + 1000) },
  ]);
  files.set('/bad', Buffer.from('not what the index says\n'));
  const [r] = await monitor.pollNow('f');
  assert.equal(r?.outcome, 'failed');
  assert.equal(getFeedState(db, 'f').watermark, before);
});

test('finding 5: an index generated before the last accepted one is refused as a replay', async (t) => {
  const { db, catalogue, monitor, publish, clock } = world(t);
  const now = clock.now;
  publish(now, [{ name: 'ok1', published: new Date(now.getTime() - hour) }]);
  await monitor.pollNow('f');
  // An attacker replays an older signed index (say, one from before a revocation was published).
  publish(new Date(now.getTime() - 24 * hour), [
    { name: 'old', published: new Date(now.getTime() - 2 * hour) },
  ]);
  const [r] = await monitor.pollNow('f');
  assert.equal(r?.outcome, 'failed');
  assert.equal(r?.error?.code, 'FEED_REPLAY');
  assert.ok(!catalogue.hasPatch('old'));
  assert.equal(getFeedState(db, 'f').consecutiveFailures, 1);
});

test('finding 5: a feed that has not advanced for the configured time is reported stale', async (t) => {
  const warnings: unknown[] = [];
  const logger = { ...silentLogger, warn: (o: unknown) => void warnings.push(o) } as unknown as Logger;
  const clock = { now: new Date() };
  const { monitor, publish } = world(t, { logger, clock });
  const generated = clock.now;
  publish(generated, [{ name: 'ok1', published: new Date(generated.getTime() - hour) }]);
  await monitor.pollNow('f');
  assert.equal(monitor.status().feeds[0]?.stale, false);
  // The server keeps serving the same (validly signed) index: frozen.
  clock.now = new Date(generated.getTime() + 25 * hour);
  await monitor.pollNow('f');
  assert.equal(monitor.status().feeds[0]?.stale, true);
  assert.ok(
    warnings.some((w) => (w as { event?: string }).event === 'feed.stale'),
    'a feed.stale warning was logged',
  );
});
