/**
 * The one test that touches the real Debian archive (skipped, saying so, when it cannot be reached): a
 * feed made from the host's configured security archive (`feed add --from-host-sources`), verified with
 * debian-archive-keyring's keys, and the pending updates of this host's own dpkg status against it; the
 * same InRelease checked against a keyring without Debian's keys is refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { exec, isUnderstudyError } from '../../../src/core/index.ts';
import {
  debianArchiveKeyring,
  fetchAptIndex,
  getFeed,
  pendingUpdates,
  realFetcher,
} from '../../../src/monitor/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

void test(
  'the real security archive, verified with debian-archive-keyring',
  { timeout: 300_000 },
  async (t) => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-real-archive-'));
    t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    const cli = (args: string[]) =>
      exec(
        [
          'node',
          '--import',
          'tsx',
          path.join(repoRoot, 'src/cli/entry.ts'),
          '--state-dir',
          stateDir,
          ...args,
        ],
        {
          cwd: repoRoot,
          timeoutMs: 60_000,
        },
      );
    await cli(['feed', 'add', 'debsec', '--kind', 'apt', '--from-host-sources']);
    const { db, catalogue } = openMonitorStore(stateDir);
    t.after(() => db.close());
    const feed = getFeed(db, 'debsec');
    const options = feed.options as { suite: string; keyring: string; trustKeyring?: boolean };
    assert.match(options.suite, /-security$/, 'the security archive of the host sources');
    assert.equal(options.keyring, debianArchiveKeyring);
    assert.equal(options.trustKeyring, true);

    const workDir = path.join(stateDir, 'work');
    let index;
    try {
      index = await fetchAptIndex(feed, { fetcher: realFetcher, workDir, now: () => new Date() });
    } catch (error) {
      if (isUnderstudyError(error, 'FEED_UNREACHABLE')) {
        t.skip(`the Debian security archive is not reachable from this machine (${error.message})`);
        return;
      }
      throw error;
    }
    assert.equal(index.status, 'ok');
    if (index.status !== 'ok') return;
    assert.ok(index.entries.length > 100, 'a real Packages index');
    assert.ok(
      index.entries.some((e) => e.package === 'nginx'),
      'the security archive carries nginx',
    );

    // This host's own packages against it: whatever moves, it moves with its source's siblings.
    const result = await pendingUpdates({
      db,
      catalogue,
      fetcher: realFetcher,
      workDir,
      lc: 'this-host',
      dpkgStatus: fs.readFileSync('/var/lib/dpkg/status'),
    });
    const moving = new Map(result.updates.map((u) => [u.package, u]));
    const installed = (await exec(['dpkg-query', '-W', '-f', '${Package} ${Version} ${source:Package}\\n']))
      .stdout;
    for (const u of result.updates) {
      assert.equal(u.feed, 'debsec');
      for (const line of installed.split('\n')) {
        const [name, , source] = line.split(' ');
        if (source === u.source && name && !moving.has(name))
          assert.fail(`${name} is built from ${u.source} like ${u.package}, but does not move with it`);
      }
    }
    t.diagnostic(
      `${result.updates.length} package(s) pending on this host, e.g. ${result.updates
        .slice(0, 5)
        .map((u) => `${u.package} ${u.installed} -> ${u.candidate}`)
        .join(', ')}`,
    );

    // A keyring without Debian's keys: the same InRelease is refused.
    const strangerKeyring = path.join(stateDir, 'empty.gpg');
    fs.writeFileSync(strangerKeyring, Buffer.alloc(0));
    await assert.rejects(
      fetchAptIndex(
        { ...feed, options: { ...feed.options, keyring: strangerKeyring } },
        {
          fetcher: realFetcher,
          workDir,
          now: () => new Date(),
        },
      ),
      (e: unknown) => isUnderstudyError(e, 'FEED_SIGNATURE_INVALID'),
    );
  },
);
