/**
 * What an LC reports about its installed packages is controlled by the LC's root. An apt feed must
 * not let that report decide what the manager downloads: reports are validated and bounded, a feed's
 * package allow-list wins over them, and one poll downloads a bounded number of packages.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../../src/core/index.ts';
import {
  addFeed,
  createMonitor,
  realFetcher,
  resolveMonitorConfig,
  type ManagedLcs,
} from '../../../src/monitor/index.ts';
import { AptRepo } from './apt-repo.ts';
import { startHttpServer, tempDir, type TestHttpServer } from './fixtures.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

const names = Array.from({ length: 12 }, (_, i) => `pkg-${String(i + 1).padStart(2, '0')}`);

describe('apt feed: guest-reported packages are bounded and validated', () => {
  let repo: AptRepo;
  let http: TestHttpServer;
  const dirs: string[] = [];

  before(async () => {
    repo = await new AptRepo('bookworm-security').init();
    for (const name of names) await repo.addPackage({ name, version: '1.0' });
    await repo.publish({ date: new Date(Date.now() - 3600_000) });
    http = await startHttpServer(repo.root);
  });
  after(async () => {
    await http?.close();
    repo?.cleanup();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  async function pollWith(report: Map<string, string>, feedOptions: Record<string, unknown> = {}) {
    const stateDir = tempDir('us-apt-guest');
    dirs.push(stateDir);
    const { db, catalogue } = openMonitorStore(stateDir);
    const managedLcs: ManagedLcs = { list: async () => ['lc1'], installedPackages: async () => report };
    const monitor = createMonitor({
      db,
      catalogue,
      config: resolveMonitorConfig({}, stateDir),
      stateDir,
      fetcher: realFetcher,
      managedLcs,
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
        ...feedOptions,
      },
    });
    const poll = async () => {
      const [r] = await monitor.pollNow('debsec');
      assert.ok(r && (r.outcome === 'ok' || r.outcome === 'not-modified'), JSON.stringify(r?.failures));
      return r.registeredNames;
    };
    return {
      poll,
      close: async () => {
        await monitor.stop();
        db.close();
      },
    };
  }

  test('finding 7: an LC claiming every package of the repository gets a bounded number downloaded per poll', async () => {
    const claims = new Map(names.map((n) => [n, '0.1']));
    const w = await pollWith(claims, { maxDownloadsPerPoll: 5 });
    try {
      assert.equal((await w.poll()).length, 5, 'five per poll');
      assert.equal((await w.poll()).length, 5);
      assert.equal((await w.poll()).length, 2, 'the rest at the next polls');
    } finally {
      await w.close();
    }
  });

  test("finding 7: with a package allow-list on the feed, the LC's report cannot add packages", async () => {
    const claims = new Map(names.map((n) => [n, '0.1']));
    const w = await pollWith(claims, { packages: ['pkg-03'] });
    try {
      assert.deepEqual(await w.poll(), ['pkg-03_1.0_amd64']);
    } finally {
      await w.close();
    }
  });

  test('finding 7: invalid names and versions are ignored, an oversized report is refused whole', async () => {
    const junk = new Map([
      ['pkg-01', '$(reboot)'],
      ['../pkg-02', '0.1'],
      ['pkg-04', '0.1'],
      ['PKG-05', '0.1'],
      ['pkg-06', `0.${'9'.repeat(300)}`],
    ]);
    const w = await pollWith(junk);
    try {
      assert.deepEqual(await w.poll(), ['pkg-04_1.0_amd64'], 'only the valid entry counts');
    } finally {
      await w.close();
    }
    const huge = new Map(Array.from({ length: 20_000 }, (_, i) => [`fake-${i}`, '1.0']));
    for (const n of names) huge.set(n, '0.1');
    const w2 = await pollWith(huge);
    try {
      assert.deepEqual(await w2.poll(), [], 'a report of 20 000 packages is not believed at all');
    } finally {
      await w2.close();
    }
  });
});
