// Patch servers over real HTTP and FTP (vsftpd): signed index, conditional requests, only new
// patches downloaded, and every kind of bad input recorded with a reason, nothing registered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { silentLogger } from '../../../src/core/index.ts';
import {
  addFeed,
  signPatchIndex,
  createMonitor,
  getFeedState,
  realFetcher,
  resolveMonitorConfig,
} from '../../../src/monitor/index.ts';
import { PatchServerDir, freePort, startHttpServer, startVsftpd, tempDir } from './fixtures.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

function setup(t: { after: (fn: () => unknown) => void }) {
  const stateDir = tempDir('us-mon');
  const { db, catalogue } = openMonitorStore(stateDir);
  const monitor = createMonitor({
    db,
    catalogue,
    config: resolveMonitorConfig({}, stateDir),
    stateDir,
    fetcher: realFetcher,
    managedLcs: { list: async () => ['lc1'], installedPackages: async () => new Map() },
    logger: silentLogger,
  });
  t.after(async () => {
    await monitor.stop();
    db.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  return { stateDir, db, catalogue, monitor };
}

const hoursAgo = (h: number): string => new Date(Date.now() - h * 3600_000).toISOString();

void test('HTTP patch server: registers verified patches, then only what is new; 304 when unchanged', async (t) => {
  const served = tempDir('us-srv');
  t.after(() => fs.rmSync(served, { recursive: true, force: true }));
  const dir = new PatchServerDir(served).add(
    { name: 'patch1', content: 'security fix 1\n', published: hoursAgo(30) },
    { name: 'patch2', content: 'feature 2\n', categories: ['feature'], published: hoursAgo(20) },
    { name: 'patch3', content: 'fix 3\n', categories: ['bugfix', 'security'], published: hoursAgo(10) },
  );
  const http = await startHttpServer(served);
  t.after(() => http.close());
  const { db, catalogue, monitor } = setup(t);
  addFeed(db, {
    name: 'vendor',
    kind: 'patch-server',
    url: http.url,
    intervalSeconds: 60,
    options: { publicKey: dir.publicKeyBase64 },
  });

  const [first] = await monitor.pollNow('vendor');
  assert.equal(first?.outcome, 'ok', JSON.stringify(first?.failures));
  assert.deepEqual(first?.registeredNames.sort(), ['patch1', 'patch2', 'patch3']);
  const p3 = catalogue.getPatch('patch3');
  assert.deepEqual(p3.categories, ['bugfix', 'security']);
  assert.equal(p3.sourceFeed, 'vendor');
  assert.equal(fs.readFileSync(p3.filePath, 'utf8'), 'fix 3\n');

  const [second] = await monitor.pollNow('vendor');
  assert.equal(second?.outcome, 'not-modified');
  assert.equal(http.requests.at(-1)?.status, 304, 'the server answered the conditional request with 304');

  http.requests.length = 0;
  dir.add({ name: 'patch4', content: 'new one\n', published: hoursAgo(1) });
  const [third] = await monitor.pollNow('vendor');
  assert.deepEqual(third?.registeredNames, ['patch4']);
  const downloaded = http.requests.filter((r) => r.path.startsWith('/files/')).map((r) => r.path);
  assert.deepEqual(downloaded, ['/files/patch4'], 'only the new patch was downloaded');
  assert.equal(getFeedState(db, 'vendor').registeredTotal, 4);
  assert.equal(monitor.status().pendingNotifications, 4, 'all four wait to be mailed');
});

void test('FTP patch server (vsftpd): registers patches, unchanged index is not fetched again', async (t) => {
  const served = tempDir('us-ftp');
  t.after(() => fs.rmSync(served, { recursive: true, force: true }));
  const dir = new PatchServerDir(served).add(
    { name: 'ftp-patch1', content: 'over ftp\n', published: hoursAgo(2) },
    { name: 'ftp-patch2', content: Buffer.alloc(200_000, 7), format: 'archive', published: hoursAgo(1) },
  );
  const ftp = await startVsftpd(served);
  t.after(() => ftp.close());
  const { db, catalogue, monitor } = setup(t);
  addFeed(db, {
    name: 'ftpvendor',
    kind: 'patch-server',
    url: ftp.url,
    intervalSeconds: 60,
    options: { publicKey: dir.publicKeyBase64, timeoutMs: 5000 },
  });
  const [first] = await monitor.pollNow('ftpvendor');
  assert.equal(first?.outcome, 'ok', JSON.stringify(first?.error));
  assert.deepEqual(first?.registeredNames.sort(), ['ftp-patch1', 'ftp-patch2']);
  assert.equal(fs.statSync(catalogue.getPatch('ftp-patch2').filePath).size, 200_000);
  const [second] = await monitor.pollNow('ftpvendor');
  assert.equal(second?.outcome, 'not-modified');
});

void test('bad input is recorded with a reason, registers nothing, and is retried with backoff', async (t) => {
  const served = tempDir('us-bad');
  t.after(() => fs.rmSync(served, { recursive: true, force: true }));
  const http = await startHttpServer(served);
  t.after(() => http.close());
  const { db, catalogue, monitor } = setup(t);
  const dir = new PatchServerDir(served);
  addFeed(db, {
    name: 'bad',
    kind: 'patch-server',
    url: http.url,
    intervalSeconds: 10,
    options: { publicKey: dir.publicKeyBase64, maxPatchBytes: 1000, timeoutMs: 500 },
  });

  const expectFailure = async (code: string, message: RegExp, failures: number): Promise<void> => {
    const before = Date.now();
    const [r] = await monitor.pollNow('bad');
    assert.equal(r?.outcome, 'failed', `expected a failure ${code}`);
    assert.equal(r?.error?.code, code);
    assert.match(r?.error?.message ?? '', message);
    const state = getFeedState(db, 'bad');
    assert.equal(state.consecutiveFailures, failures);
    assert.equal(state.lastErrorCode, code);
    const delay = Date.parse(state.nextPollAt ?? '') - before;
    const expected = 10_000 * 2 ** (failures - 1);
    assert.ok(delay >= expected - 100 && delay <= expected + 2000, `backoff ${delay} ms ≈ ${expected} ms`);
    assert.equal(catalogue.listPatches().length, 0, 'nothing registered');
  };

  dir.publish({ index: '{"version": 1, "patches": [' });
  await expectFailure('FEED_INDEX_INVALID', /not JSON/, 1);
  dir.publish({
    index: JSON.stringify({
      version: 1,
      generated: new Date().toISOString(),
      patches: [{ name: 'x', categories: ['urgent'] }],
    }),
  });
  await expectFailure('FEED_INDEX_INVALID', /malformed at patches\.0/, 2);

  dir.add({ name: 'evil', content: 'rm -rf /\n', declaredSha256: 'a'.repeat(64) });
  dir.publish({ signature: null });
  await expectFailure('FEED_SIGNATURE_INVALID', /no signature/, 3);
  const otherKey = tempDir('us-other');
  t.after(() => fs.rmSync(otherKey, { recursive: true, force: true }));
  const stranger = new PatchServerDir(otherKey);
  dir.publish({ signature: signPatchIndex(fs.readFileSync(`${served}/index.json`), stranger.privateKey) });
  await expectFailure('FEED_SIGNATURE_INVALID', /does not verify/, 4);
  dir.publish();
  await expectFailure('PATCH_HASH_MISMATCH', /evil.*sha256/, 5);
});

void test('size limits, a server that is down or too slow', async (t) => {
  const served = tempDir('us-size');
  t.after(() => fs.rmSync(served, { recursive: true, force: true }));
  const http = await startHttpServer(served);
  t.after(() => http.close());
  const { db, catalogue, monitor } = setup(t);
  const dir = new PatchServerDir(served);
  addFeed(db, {
    name: 'sizes',
    kind: 'patch-server',
    url: http.url,
    intervalSeconds: 10,
    options: { publicKey: dir.publicKeyBase64, maxPatchBytes: 1000, timeoutMs: 400 },
  });

  dir.add({ name: 'huge', content: Buffer.alloc(5000) });
  let [r] = await monitor.pollNow('sizes');
  assert.equal(r?.error?.code, 'PATCH_TOO_LARGE');
  assert.match(r?.error?.message ?? '', /declares 5000 bytes, more than the limit of 1000/);

  // A file bigger than its index entry says: the download is cut off at the declared size.
  fs.rmSync(`${served}/files/huge`);
  const dir2 = new PatchServerDir(served);
  db.prepare('UPDATE feeds SET options = ? WHERE name = ?').run(
    JSON.stringify({ publicKey: dir2.publicKeyBase64, maxPatchBytes: 1000, timeoutMs: 400 }),
    'sizes',
  );
  dir2.add({ name: 'grows', content: Buffer.alloc(900, 1), declaredSize: 100 });
  [r] = await monitor.pollNow('sizes');
  assert.equal(r?.error?.code, 'PATCH_TOO_LARGE');
  assert.match(r?.error?.message ?? '', /larger than its declared 100 bytes/);
  assert.equal(catalogue.listPatches().length, 0);

  http.delayMs = 1500;
  [r] = await monitor.pollNow('sizes');
  assert.equal(r?.error?.code, 'FEED_UNREACHABLE');
  assert.match(r?.error?.message ?? '', /no answer within 400 ms/);
  http.delayMs = 0;

  const downPort = await freePort();
  db.prepare('UPDATE feeds SET url = ? WHERE name = ?').run(`http://127.0.0.1:${downPort}/`, 'sizes');
  [r] = await monitor.pollNow('sizes');
  assert.equal(r?.error?.code, 'FEED_UNREACHABLE');
  assert.match(r?.error?.message ?? '', /ECONNREFUSED/);
  assert.equal(getFeedState(db, 'sizes').consecutiveFailures, 4);
  assert.equal(catalogue.listPatches().length, 0, 'nothing registered from any bad input');
});
