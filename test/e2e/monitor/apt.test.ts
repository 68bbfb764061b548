// An apt repository built and signed by the test, served over real HTTP: new versions of installed
// packages become deb patches; bad signatures, tampering, replays and expired indexes are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { silentLogger } from '../../../src/core/index.ts';
import {
  addFeed,
  autoApprove,
  createMonitor,
  getFeedState,
  realFetcher,
  resolveMonitorConfig,
} from '../../../src/monitor/index.ts';
import { startHttpServer, tempDir } from './fixtures.ts';
import { AptRepo } from './apt-repo.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

void test(
  'apt repository: registers newer versions of installed packages; refuses bad signatures, tampering, replay, expiry',
  { timeout: 120_000 },
  async (t) => {
    const repo = await new AptRepo('bookworm-security').init();
    const stranger = await repo.otherKeyHome();
    t.after(() => repo.cleanup([stranger]));
    await repo.addPackage({ name: 'hello-us', version: '1.0-1' });
    await repo.addPackage({
      name: 'hello-us',
      version: '1.0-2',
      description: 'hello with the fix for CVE-2026-1',
    });
    await repo.addPackage({ name: 'not-installed', version: '9.9' });
    await repo.addPackage({ name: 'old-tool', version: '0.9' });
    const day = 86_400_000;
    await repo.publish({ date: new Date(Date.now() - 2 * 3600_000) });
    const http = await startHttpServer(repo.root);
    t.after(() => http.close());

    const stateDir = tempDir('us-apt-state');
    t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    const { db, catalogue } = openMonitorStore(stateDir);
    const installed: Record<string, Map<string, string>> = {
      lc1: new Map([
        ['hello-us', '1.0-1'],
        ['old-tool', '1.0'],
      ]),
      lc2: new Map([['other', '1']]),
    };
    const managedLcs = {
      list: async () => Object.keys(installed),
      installedPackages: async (lc: string) => installed[lc] ?? new Map<string, string>(),
    };
    const monitor = createMonitor({
      db,
      catalogue,
      config: resolveMonitorConfig({}, stateDir),
      stateDir,
      fetcher: realFetcher,
      managedLcs,
      logger: silentLogger,
    });
    t.after(async () => {
      await monitor.stop();
      db.close();
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

    let [r] = await monitor.pollNow('debsec');
    assert.equal(r?.outcome, 'ok', JSON.stringify(r?.failures));
    assert.deepEqual(
      r?.registeredNames,
      ['hello-us_1.0-2_amd64'],
      'only the newer version of an installed package (old-tool 0.9 < 1.0)',
    );
    const patch = catalogue.getPatch('hello-us_1.0-2_amd64');
    assert.equal(patch.format, 'deb');
    assert.deepEqual(patch.categories, ['security']);
    assert.equal(patch.package, 'hello-us');
    assert.equal(patch.version, '1.0-2');
    assert.match(patch.description, /CVE-2026-1/);
    const seen = db
      .prepare('SELECT first_seen_at FROM apt_versions_seen WHERE package = ? AND version = ?')
      .get('hello-us', '1.0-2') as { first_seen_at: string };
    assert.equal(seen.first_seen_at, patch.firstSeenAt);

    [r] = await monitor.pollNow('debsec');
    assert.equal(r?.outcome, 'not-modified');

    const expectRefused = async (code: string, message: RegExp): Promise<void> => {
      const [res] = await monitor.pollNow('debsec');
      assert.equal(res?.outcome, 'failed');
      assert.equal(res?.error?.code, code, res?.error?.message);
      assert.match(res?.error?.message ?? '', message);
    };
    await repo.addPackage({ name: 'hello-us', version: '1.0-3' });
    await repo.publish({ signWith: stranger });
    await expectRefused('FEED_SIGNATURE_INVALID', /does not verify/);
    await repo.publish({ tamper: true });
    await expectRefused('FEED_SIGNATURE_INVALID', /does not verify/);
    await repo.publish({ date: new Date(Date.now() - day) });
    await expectRefused('FEED_REPLAY', /older than .* already seen/);
    await repo.publish({ validUntil: new Date(Date.now() - 3600_000) });
    await expectRefused('FEED_REPLAY', /expired/);
    assert.equal(catalogue.listPatches().length, 1, 'nothing registered from refused indexes');
    assert.equal(getFeedState(db, 'debsec').consecutiveFailures, 4);

    await repo.publish();
    [r] = await monitor.pollNow('debsec');
    assert.deepEqual(r?.registeredNames, ['hello-us_1.0-3_amd64']);
    assert.equal(getFeedState(db, 'debsec').consecutiveFailures, 0);

    // Auto-approval N days after first seen, per category; only LCs with the package get the flag.
    const deps = {
      db,
      catalogue,
      managedLcs,
      logger: silentLogger,
      now: () => new Date(Date.now() + 1 * day),
    };
    assert.deepEqual(await autoApprove(deps, { security: 2 }), [], 'not yet: seen one day ago');
    const later = { ...deps, now: () => new Date(Date.now() + 3 * day) };
    assert.deepEqual((await autoApprove(later, { security: 2 })).sort(), [
      'hello-us_1.0-2_amd64',
      'hello-us_1.0-3_amd64',
    ]);
    assert.deepEqual(
      catalogue
        .patchesForNextRun('lc1')
        .map((p) => p.name)
        .sort(),
      ['hello-us_1.0-2_amd64', 'hello-us_1.0-3_amd64'],
    );
    assert.deepEqual(catalogue.patchesForNextRun('lc2'), []);
    assert.deepEqual(await autoApprove(later, { security: 2 }), [], 'decided patches are not approved again');
  },
);
