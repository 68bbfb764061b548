/**
 * The debian image (debootstrap minbase, cached): LCs boot it with the same init and demo service, and a
 * patch run applies `deb` (dpkg -i) and `archive` (tar + manifests) patches on it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec } from '../../../src/core/index.ts';
import { createCatalogue, patchesDirOf, sha256File, type Catalogue } from '../../../src/catalogue/index.ts';
import { startRun } from '../../../src/run/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';

async function buildDeb(dir: string): Promise<string> {
  const root = path.join(dir, 'deb');
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/share/understudy-demo'), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/share/understudy-demo/security-fix'), 'CVE-2026-0001 fixed\n');
  fs.writeFileSync(
    path.join(root, 'DEBIAN/control'),
    'Package: understudy-demo-fix\nVersion: 1.0.1\nArchitecture: all\nMaintainer: understudy tests <root@localhost>\nDescription: test security fix\n',
  );
  const file = path.join(dir, 'understudy-demo-fix_1.0.1_all.deb');
  await exec(['dpkg-deb', '--root-owner-group', '--build', root, file]);
  return file;
}

async function buildArchive(dir: string): Promise<string> {
  const work = path.join(dir, 'archive');
  fs.mkdirSync(path.join(work, 'files/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'files/etc/understudy-motd'), 'patched by archive\n');
  const sha = (await exec(['sha256sum', 'etc/understudy-motd'], { cwd: path.join(work, 'files') })).stdout;
  fs.writeFileSync(path.join(work, 'manifest.after'), sha);
  fs.writeFileSync(path.join(work, 'manifest.before'), '');
  const file = path.join(dir, 'motd.tar');
  await exec(['tar', '-C', work, '-cf', file, 'files', 'manifest.after', 'manifest.before']);
  return file;
}

describe('debian image', () => {
  let t: TestHost;
  let catalogue: Catalogue;
  before(async () => {
    t = await createTestHost({ images: ['busybox', 'debian'], poolSize: 4 * 1024 ** 3 });
    catalogue = createCatalogue({ db: t.app.db, patchesDir: patchesDirOf(t.stateDir) });
  });
  after(async () => t?.dispose());

  test('an LC boots the debian image with its own init and the demo service; deb and archive patches apply in a run', async () => {
    await t.lc({ name: 'deb1', image: 'debian', addresses: [`${t.prefix}.10`], role: 'active', cpus: '0' });
    await t.lc({ name: 'deb2', image: 'debian', addresses: [`${t.prefix}.11`], cpus: '1' }, { start: false });
    assert.match((await t.host.driver.exec('deb1', ['cat', '/etc/debian_version'])).stdout, /^\d+/);
    assert.match((await t.host.driver.exec('deb1', ['cat', '/proc/1/cmdline'])).stdout, /^init/);
    const version = await fetch(`http://${t.prefix}.10/version`, { signal: AbortSignal.timeout(5000) });
    assert.equal(version.headers.get('x-served-by'), 'deb1');

    for (const [name, format, file] of [
      ['understudy-demo-fix', 'deb', await buildDeb(t.stateDir)],
      ['motd', 'archive', await buildArchive(t.stateDir)],
    ] as const) {
      await catalogue.registerPatch({
        file,
        name,
        categories: ['security'],
        format,
        sha256: (await sha256File(file)).sha256,
      });
      catalogue.markNextRun(name, 'deb1', true);
    }
    const run = await startRun({ lc: 'deb1', skipScan: true }, { db: t.app.db, host: t.host, catalogue });
    assert.equal(run.state, 'switched', run.error ?? '');
    assert.deepEqual(
      run.facts.patchResults?.map((p) => [p.name, p.result]),
      [
        ['understudy-demo-fix', 'ok'],
        ['motd', 'ok'],
      ],
    );
    assert.match(
      (await t.host.driver.exec('deb2', ['dpkg-query', '-W', '-f', '${Version}', 'understudy-demo-fix']))
        .stdout,
      /^1\.0\.1$/,
    );
    assert.equal(
      (await t.host.driver.exec('deb2', ['cat', '/etc/understudy-motd'])).stdout,
      'patched by archive\n',
    );
    const after = await fetch(`http://${t.prefix}.10/version`, { signal: AbortSignal.timeout(5000) });
    assert.equal(after.headers.get('x-served-by'), 'deb2');
  });
});
