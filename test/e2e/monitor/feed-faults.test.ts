/**
 * Fault: the feed server is slow (hangs, or drips its answer a byte at a time) or answers garbage.
 * Over real HTTP: each poll ends by its timeout with a clear error, registers nothing, leaves the
 * watermark alone and backs off; the monitor keeps working and picks the patches up once the server
 * is healthy again. Nothing registered earlier is lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../../src/core/index.ts';
import {
  addFeed,
  createMonitor,
  getFeedState,
  realFetcher,
  resolveMonitorConfig,
  signPatchIndex,
  type Monitor,
} from '../../../src/monitor/index.ts';
import type { Db } from '../../../src/store/index.ts';
import type { Catalogue } from '../../../src/catalogue/index.ts';
import { PatchServerDir, tempDir } from './fixtures.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

type Mode = 'ok' | 'hang' | 'drip' | 'garbage' | 'signed-garbage' | 'truncated';

describe('fault: the feed server is slow or returns garbage', () => {
  let mode: Mode = 'ok';
  let served: string;
  let stateDir: string;
  let patchServer: PatchServerDir;
  let server: http.Server;
  let url: string;
  let db: Db;
  let catalogue: Catalogue;
  let monitor: Monitor;
  const timeoutMs = 1500;
  const open = new Set<http.ServerResponse>();

  before(async () => {
    served = tempDir('us-feedfault');
    stateDir = tempDir('us-feedfault-state');
    patchServer = new PatchServerDir(served);
    patchServer.add({
      name: 'first-fix',
      content: 'one\n',
      published: new Date(Date.now() - 3600_000).toISOString(),
    });
    server = http.createServer((req, res) => {
      const file = path.join(served, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      const body = fs.existsSync(file) ? fs.readFileSync(file) : null;
      if (!body) return void res.writeHead(404).end();
      if (mode === 'hang') return void open.add(res); // headers never come
      if (mode === 'drip' && req.url?.endsWith('index.json')) {
        open.add(res);
        res.writeHead(200, { 'content-length': String(body.length) });
        let i = 0;
        const timer = setInterval(() => {
          if (i >= body.length || res.destroyed) clearInterval(timer);
          else res.write(body.subarray(i, ++i));
        }, 200);
        res.on('close', () => clearInterval(timer));
        return undefined;
      }
      if (mode === 'garbage' && req.url?.endsWith('index.json')) return void res.end(randomBytes(4096));
      if (mode === 'truncated' && req.url?.endsWith('index.json'))
        return void res.end(body.subarray(0, Math.floor(body.length / 2)));
      if (mode === 'signed-garbage' && /index\.json(\.sig)?$/.test(req.url ?? '')) {
        const junk = Buffer.from('{"version": 1, "generated": "yesterday", "patches": [{"name": 7}]}');
        return void res.end(req.url?.endsWith('.sig') ? signPatchIndex(junk, patchServer.privateKey) : junk);
      }
      return void res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const store = openMonitorStore(stateDir);
    db = store.db;
    catalogue = store.catalogue;
    monitor = createMonitor({
      db,
      catalogue,
      config: resolveMonitorConfig({}, stateDir),
      stateDir,
      fetcher: realFetcher,
      managedLcs: { list: async () => [], installedPackages: async () => new Map() },
      logger: silentLogger,
    });
    addFeed(db, {
      name: 'vendor',
      kind: 'patch-server',
      url,
      intervalSeconds: 60,
      options: { publicKey: patchServer.publicKeyBase64, timeoutMs },
    });
    mode = 'ok';
    const [r] = await monitor.pollNow('vendor');
    assert.deepEqual(r?.registeredNames, ['first-fix']);
  });
  after(async () => {
    for (const res of open) res.destroy();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await monitor?.stop();
    db?.close();
    fs.rmSync(served, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test('fault: a hanging, dripping or garbage-serving feed server fails each poll cleanly and recovers', async () => {
    patchServer.add({ name: 'second-fix', content: 'two\n' });
    const watermark = getFeedState(db, 'vendor').watermark;
    const expected: Record<Exclude<Mode, 'ok'>, string[]> = {
      hang: ['FEED_UNREACHABLE'],
      drip: ['FEED_UNREACHABLE'],
      garbage: ['FEED_SIGNATURE_INVALID', 'FEED_INDEX_INVALID'],
      truncated: ['FEED_SIGNATURE_INVALID', 'FEED_INDEX_INVALID'],
      'signed-garbage': ['FEED_INDEX_INVALID'],
    };
    let failures = 0;
    for (const [m, codes] of Object.entries(expected) as [Exclude<Mode, 'ok'>, string[]][]) {
      mode = m;
      const started = Date.now();
      const [r] = await monitor.pollNow('vendor');
      const ms = Date.now() - started;
      diagnostic(`${m}: ${r?.error?.code} after ${ms} ms: ${r?.error?.message}`);
      assert.equal(r?.outcome, 'failed', m);
      assert.ok(codes.includes(r?.error?.code ?? ''), `${m}: ${r?.error?.code} ${r?.error?.message}`);
      assert.ok(ms < timeoutMs * 2 + 2000, `${m}: the poll ended by its timeout (${ms} ms)`);
      failures++;
      const state = getFeedState(db, 'vendor');
      assert.equal(state.consecutiveFailures, failures);
      assert.equal(state.watermark, watermark, `${m}: the watermark did not move`);
      assert.ok(
        Date.parse(state.nextPollAt ?? '') - Date.now() >= 60_000 * 2 ** (failures - 1) - 5000,
        `${m}: the next poll backs off`,
      );
      assert.ok(!catalogue.hasPatch('second-fix'));
    }
    mode = 'ok';
    const [r] = await monitor.pollNow('vendor');
    assert.equal(r?.outcome, 'ok');
    assert.deepEqual(r?.registeredNames, ['second-fix'], 'the patch is found once the server is healthy');
    assert.ok(catalogue.hasPatch('first-fix'), 'nothing registered earlier was lost');
    assert.equal(getFeedState(db, 'vendor').consecutiveFailures, 0);
  });
});

function diagnostic(message: string): void {
  if (process.env.UNDERSTUDY_TEST_VERBOSE) console.log(message);
}
