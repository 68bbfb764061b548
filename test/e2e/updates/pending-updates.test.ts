/**
 * Pending Debian updates of a real LXC LC (Debian bookworm with unmodified nginx from the main archive),
 * read from its own dpkg status on its system disk, against a local signed apt repository that carries
 * real Debian .debs of the security version (fetched with apt-get download, cached), served over HTTP:
 * the plan is exactly nginx with nginx-common; --apply registers exactly those verified files and marks
 * them for the LC's next run; a package the feed lacks, a dependency nothing satisfies, a symlink out of
 * the LC and an oversized status file are clear errors that register nothing.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLc } from '../../../src/inventory/index.ts';
import { compareDebianVersions, parseDpkgStatus } from '../../../src/monitor/index.ts';
import { createLxcBed, type LxcBed } from '../lxc/lxc-fixture.ts';
import { AptRepo } from '../monitor/apt-repo.ts';
import { startHttpServer, tempDir, type TestHttpServer } from '../monitor/fixtures.ts';
import { archiveVersions, realDebs, repackWithVersion } from './real-debs.ts';

interface Update {
  package: string;
  installed: string | null;
  candidate: string;
  source: string;
  feed: string;
  sha256: string;
  reasons: { kind: string }[];
}
interface UpdatesJson {
  updates: Update[];
  patches: { name: string; sha256: string; format: string; package: string; version: string }[];
}

const sha256 = (file: string): string =>
  crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('understudy updates: pending Debian updates of an LXC LC', () => {
  let bed: LxcBed;
  let systemDisk: string;
  let installedNginx: string;
  let candidate: string;
  let newDebs: string[];
  const cleanups: (() => Promise<void> | void)[] = [];
  const servers: TestHttpServer[] = [];

  async function serveRepo(suite: string, debs: string[]): Promise<{ repo: AptRepo; url: string }> {
    const repo = await new AptRepo(suite).init();
    cleanups.push(() => repo.cleanup());
    for (const deb of debs) repo.addDebFile(deb);
    await repo.addPackage({ name: 'not-installed', version: '9.9' });
    await repo.publish();
    const server = await startHttpServer(repo.root);
    servers.push(server);
    return { repo, url: server.url };
  }

  async function addFeed(name: string, suite: string, repo: AptRepo, url: string): Promise<void> {
    await bed.t.cli([
      'feed',
      'add',
      name,
      '--kind',
      'apt',
      '--url',
      url,
      '--suite',
      suite,
      '--component',
      'main',
      '--arch',
      'amd64',
      '--keyring',
      repo.keyring,
      '--fingerprint',
      repo.fingerprint,
    ]);
  }

  async function updatesError(args: string[]): Promise<{ code: string; message: string }> {
    const r = await bed.t.cli(['--json', 'updates', 'web', ...args], { okCodes: [1] });
    return (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
  }

  before(async () => {
    bed = await createLxcBed();
    await bed.t.cli([
      'lc',
      'create',
      'web',
      '--driver',
      'lxc',
      '--image',
      'debian-nginx',
      '--memory',
      '256',
      '--app-mount',
      '/srv/app',
      '--address',
      `${bed.t.prefix}.81`,
    ]);
    systemDisk = bed.t.host.disks.mountpoint({ lc: getLc(bed.t.app.db, 'web'), disk: 'system' });
    const status = parseDpkgStatus(fs.readFileSync(path.join(systemDisk, 'var/lib/dpkg/status')), 'web');
    installedNginx = status.find((p) => p.name === 'nginx')?.version ?? '';
    assert.ok(installedNginx, 'the image has nginx installed');
    const newer = (await archiveVersions('nginx')).find((v) => compareDebianVersions(v, installedNginx) > 0);
    if (newer) {
      candidate = newer;
      newDebs = await realDebs([`nginx=${candidate}`, `nginx-common=${candidate}`]);
    } else {
      // The archives hold nothing newer than the image: Debian's own packages, repacked one version up.
      candidate = `${installedNginx}+us1`;
      console.log(`# no newer nginx than ${installedNginx} in the archives: repacking it as ${candidate}`);
      const old = await realDebs([`nginx=${installedNginx}`, `nginx-common=${installedNginx}`]);
      const out = tempDir('us-repacked');
      cleanups.push(() => fs.rmSync(out, { recursive: true, force: true }));
      newDebs = [];
      for (const deb of old)
        newDebs.push(
          await repackWithVersion({
            deb,
            version: candidate,
            outDir: out,
            edit: (c) => c.replaceAll(installedNginx, candidate),
          }),
        );
    }
    assert.equal(newDebs.length, 2);
  });

  after(async () => {
    for (const s of servers) await s.close();
    for (const c of cleanups.reverse()) await c();
    await bed?.dispose();
  });

  test('the plan is exactly nginx with nginx-common; --apply registers those verified files for the next run', async () => {
    const { repo, url } = await serveRepo('bookworm-security', newDebs);
    await addFeed('sec', 'bookworm-security', repo, url);
    const planned = JSON.parse((await bed.t.cli(['--json', 'updates', 'web'])).stdout) as UpdatesJson;
    assert.deepEqual(
      planned.updates.map((u) => [u.package, u.installed, u.candidate, u.source, u.feed]).sort(),
      [
        ['nginx', installedNginx, candidate, 'nginx', 'sec'],
        ['nginx-common', installedNginx, candidate, 'nginx', 'sec'],
      ],
    );
    assert.deepEqual(planned.patches, [], 'nothing registered without --apply');
    const human = await bed.t.cli(['updates', 'web']);
    assert.match(human.stdout, /nginx-common .*newer version in the feed/);

    const applied = JSON.parse(
      (await bed.t.cli(['--json', 'updates', 'web', '--apply'])).stdout,
    ) as UpdatesJson;
    const expected = new Map(
      newDebs.map((f) => [
        path
          .basename(f)
          .replace(/\.deb$/, '')
          .replace(/%3a/g, ':'),
        sha256(f),
      ]),
    );
    assert.deepEqual(
      applied.patches.map((p) => [p.name, p.sha256, p.format]).sort(),
      [...expected].map(([name, sum]) => [name, sum, 'deb']).sort(),
      'exactly the real .deb files, with the sha256 of the index',
    );
    const list = JSON.parse((await bed.t.cli(['--json', 'patch', 'list', '--lc', 'web'])).stdout) as {
      patches: { name: string; state: { applyNextRun: boolean } | null }[];
    };
    assert.deepEqual(
      list.patches
        .filter((p) => p.state?.applyNextRun)
        .map((p) => p.name)
        .sort(),
      [...expected.keys()].sort(),
      'marked for the next run of web, and nothing else',
    );
  });

  test('a package the feed lacks and a dependency nothing satisfies are refused, nothing registered', async () => {
    const nginxOnly = newDebs.filter((f) => path.basename(f).startsWith('nginx_'));
    const { repo, url } = await serveRepo('bookworm-broken', nginxOnly);
    await addFeed('broken', 'bookworm-broken', repo, url);
    const before = JSON.parse((await bed.t.cli(['--json', 'patch', 'list'])).stdout) as {
      patches: unknown[];
    };
    let error = await updatesError(['--feed', 'broken', '--apply']);
    assert.equal(error.code, 'UPDATE_PACKAGE_NOT_IN_FEED', error.message);
    assert.match(error.message, /nginx-common .* must move because it is built from nginx/);

    // A build of the pair one version up whose nginx needs a library no feed has.
    const bumped = `${candidate}+us9`;
    const out = tempDir('us-unsat');
    cleanups.push(() => fs.rmSync(out, { recursive: true, force: true }));
    for (const deb of newDebs)
      repo.addDebFile(
        await repackWithVersion({
          deb,
          version: bumped,
          outDir: out,
          edit: (c) =>
            c
              .replaceAll(candidate, bumped)
              .replace(/^Depends: (.*)$/m, (_m, d: string) =>
                /^Package: nginx$/m.test(c) ? `Depends: ${d}, libnot-in-any-feed1 (>= 2)` : `Depends: ${d}`,
              ),
        }),
      );
    await repo.publish();
    error = await updatesError(['--feed', 'broken', '--apply']);
    assert.equal(error.code, 'UPDATE_DEPENDENCY_UNSATISFIABLE', error.message);
    assert.match(error.message, /nginx .* depends on "libnot-in-any-feed1 \(>= 2\)"/);
    const after = JSON.parse((await bed.t.cli(['--json', 'patch', 'list'])).stdout) as { patches: unknown[] };
    assert.equal(after.patches.length, before.patches.length, 'a refused plan registers nothing');
  });

  test("the LC's status is read inside its root: a symlink out of it and an oversized file are refused", async () => {
    const statusFile = path.join(systemDisk, 'var/lib/dpkg/status');
    const saved = `${statusFile}.us-saved`;
    fs.renameSync(statusFile, saved);
    const hostDecoy = tempDir('us-decoy');
    try {
      // A host file the LC's root points at: the manager must not read it.
      fs.writeFileSync(
        path.join(hostDecoy, 'status'),
        fs.readFileSync(saved, 'utf8').replaceAll(installedNginx, '0.1-1'),
      );
      fs.symlinkSync(path.join(hostDecoy, 'status'), statusFile);
      let error = await updatesError(['--feed', 'sec']);
      assert.equal(error.code, 'DPKG_STATUS_INVALID', error.message);
      assert.match(error.message, /has no \/var\/lib\/dpkg\/status/);

      fs.rmSync(statusFile);
      fs.writeFileSync(statusFile, Buffer.alloc(40 * 1024 * 1024, '\n'));
      error = await updatesError(['--feed', 'sec']);
      assert.equal(error.code, 'DPKG_STATUS_INVALID', error.message);
      assert.match(error.message, /more than the limit/);
    } finally {
      fs.rmSync(statusFile, { force: true });
      fs.renameSync(saved, statusFile);
      fs.rmSync(hostDecoy, { recursive: true, force: true });
    }
  });
});
