/**
 * An apt repository signed in every way gpgv lets pass with exit code 0 — an expired key, a revoked
 * key, a SHA-1 digest, a key in the keyring but not configured — and dated in the future: each poll is
 * refused and leaves the feed's watermark where it was. Real gpg, real gpgv, real HTTP.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../../src/core/index.ts';
import {
  addFeed,
  createMonitor,
  getFeedState,
  realFetcher,
  resolveMonitorConfig,
  type Monitor,
} from '../../../src/monitor/index.ts';
import type { Db } from '../../../src/store/index.ts';
import { AptRepo } from './apt-repo.ts';
import { startHttpServer, tempDir, type TestHttpServer } from './fixtures.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

describe('apt InRelease signatures are judged by gpgv status, not its exit code', () => {
  let repo: AptRepo;
  let http: TestHttpServer;
  let stateDir: string;
  let db: Db;
  let monitor: Monitor;
  const homes: string[] = [];

  const pollRefused = async (code: string, message: RegExp): Promise<void> => {
    const watermark = getFeedState(db, 'debsec').watermark;
    const [r] = await monitor.pollNow('debsec');
    assert.equal(r?.outcome, 'failed');
    assert.equal(r?.error?.code, code, r?.error?.message);
    assert.match(r?.error?.message ?? '', message);
    assert.equal(getFeedState(db, 'debsec').watermark, watermark, 'the watermark did not move');
  };

  before(async () => {
    repo = await new AptRepo('bookworm-security').init();
    await repo.addPackage({ name: 'hello-us', version: '1.0-2' });
    await repo.publish({ date: new Date(Date.now() - 3600_000) });
    http = await startHttpServer(repo.root);
    stateDir = tempDir('us-aptsig-state');
    const store = openMonitorStore(stateDir);
    db = store.db;
    monitor = createMonitor({
      db,
      catalogue: store.catalogue,
      config: resolveMonitorConfig({}, stateDir),
      stateDir,
      fetcher: realFetcher,
      managedLcs: {
        list: async () => ['lc1'],
        installedPackages: async () => new Map([['hello-us', '1.0-1']]),
      },
      logger: silentLogger,
    });
    addFeed(db, {
      name: 'debsec',
      kind: 'apt',
      url: http.url,
      intervalSeconds: 60,
      options: {
        suite: 'bookworm-security',
        components: ['main'],
        architectures: ['amd64'],
        keyring: repo.keyring,
        fingerprints: [repo.fingerprint],
      },
    });
    const [r] = await monitor.pollNow('debsec');
    assert.equal(r?.outcome, 'ok', JSON.stringify(r?.failures));
  });
  after(async () => {
    await monitor?.stop();
    db?.close();
    await http?.close();
    repo?.cleanup(homes);
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test('finding 4: an InRelease signed by an expired key is refused', async () => {
    const old = await repo.keyHome({ fakedTime: '20200101T000000', expire: '1d' });
    homes.push(old.home);
    await repo.trust(old);
    // The key signs while it was valid (2020); the Release itself is fresh.
    await repo.publish({ signWith: old.home, gpgArgs: ['--faked-system-time', '20200101T010000'] });
    await pollRefused('FEED_SIGNATURE_INVALID', /EXPKEYSIG/);
  });

  test('finding 4: an InRelease signed by a revoked key is refused', async () => {
    const revoked = await repo.keyHome();
    homes.push(revoked.home);
    await repo.trust(revoked, { revoked: true });
    await repo.publish({ signWith: revoked.home });
    await pollRefused('FEED_SIGNATURE_INVALID', /REVKEYSIG/);
  });

  test('finding 4: a SHA-1 signature from the configured key is refused', async () => {
    await repo.publish({ gpgArgs: ['--digest-algo', 'SHA1'] });
    await pollRefused('FEED_SIGNATURE_INVALID', /weak digest/);
  });

  test('finding 4: a good signature from a key in the keyring that is not configured is refused', async () => {
    const other = await repo.keyHome();
    homes.push(other.home);
    await repo.trust(other);
    await repo.publish({ signWith: other.home });
    await pollRefused('FEED_SIGNATURE_INVALID', /not a configured key/);
  });

  test('finding 4: an InRelease dated in the future is refused and does not poison the watermark', async () => {
    await repo.publish({
      date: new Date(Date.now() + 30 * 86_400_000),
      validUntil: new Date(Date.now() + 60 * 86_400_000),
    });
    await pollRefused('FEED_DATE_INVALID', /in the future/);
    // A correct index published afterwards is still accepted.
    await repo.addPackage({ name: 'hello-us', version: '1.0-3' });
    await repo.publish();
    const [r] = await monitor.pollNow('debsec');
    assert.equal(r?.outcome, 'ok', JSON.stringify(r?.failures));
    assert.deepEqual(r?.registeredNames, ['hello-us_1.0-3_amd64']);
  });
});
