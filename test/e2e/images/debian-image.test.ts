/**
 * Real Debian system images: debootstrap from the host's configured archive, cached by inputs (a second
 * build fetches nothing), clear errors for an unknown suite, an unavailable package, no space and a
 * debootstrap that fails half-way (with nothing half-built left), and `image import` of a directory or
 * a tarball that then boots under LXC.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec, waitFor } from '../../../src/core/index.ts';
import { getPool } from '../../../src/host/index.ts';
import { buildImage, findImage, hostDebianMirror, importImage } from '../../../src/images/index.ts';
import { createLxcBed, testImagePackages, type LxcBed } from '../lxc/lxc-fixture.ts';

const testCache = process.env.UNDERSTUDY_TEST_CACHE ?? '/var/cache/understudy-test';

describe('Debian system images', () => {
  let bed: LxcBed;
  before(async () => {
    bed = await createLxcBed();
  });
  after(async () => bed?.dispose());

  test('the image records its inputs; a second build of the same inputs comes from the cache', async () => {
    const first = findImage(bed.t.app.db, 'debian-nginx');
    assert.ok(first);
    assert.equal(first.recipe, 'debian-system');
    assert.equal(first.inputs?.suite, 'bookworm');
    assert.deepEqual(first.inputs?.packages, [...testImagePackages].sort());
    assert.equal(first.inputs?.mirror, hostDebianMirror());
    assert.match(String(first.inputs?.snapshot), /\d{4} \d\d:\d\d:\d\d/, 'the archive Release Date');
    const lines: string[] = [];
    const started = performance.now();
    const again = await buildImage({
      db: bed.t.app.db,
      recipe: 'debian',
      name: 'debian-nginx-2',
      suite: 'bookworm',
      packages: [...testImagePackages].reverse(), // order does not matter
      pool: getPool(bed.t.app.db, 'main'),
      cacheDir: testCache,
      progress: (l) => lines.push(l),
    });
    const ms = performance.now() - started;
    assert.equal(again.inputs?.key, first.inputs?.key);
    assert.ok(
      lines.some((l) => l.includes('using the cached')),
      lines.join('\n'),
    );
    assert.ok(!lines.some((l) => l.startsWith('debootstrap')), 'nothing was debootstrapped');
    assert.ok(ms < 60_000, `cached build took ${ms.toFixed(0)} ms`);
    console.log(`# image build from the cache: ${(ms / 1000).toFixed(1)} s`);
    const nginx = fs.readFileSync(path.join(again.path, 'var/lib/dpkg/status'), 'utf8');
    assert.match(nginx, /^Package: nginx$/m);
    assert.match(nginx, /^Package: systemd-sysv$/m);
  });

  test('an unknown suite and an unavailable package are named; nothing half-built is left', async () => {
    const suite = await bed.t.cli(['image', 'build', 'debian', '--suite', 'nosuchsuite'], { okCodes: [1] });
    assert.match(suite.stderr, /has no suite "nosuchsuite"/);
    assert.match(suite.stderr, /hint: /);
    const pkg = await bed.t.cli(
      [
        '--json',
        'image',
        'build',
        'debian',
        '--suite',
        'bookworm',
        '--packages',
        'nginx,no-such-package-xyz',
      ],
      {
        okCodes: [1],
      },
    );
    const error = (JSON.parse(pkg.stdout) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'IMAGE_PACKAGE_UNAVAILABLE');
    assert.match(error.message, /no-such-package-xyz/);
    const cache = path.join(bed.t.stateDir, 'cache');
    const left = fs.existsSync(cache) ? fs.readdirSync(cache) : [];
    assert.deepEqual(left, [], 'no tarball and no debootstrap work directory left in the cache');
    const images = fs.readdirSync(path.join(getPool(bed.t.app.db, 'main').mountpoint, 'images'));
    assert.ok(!images.some((i) => i.includes('building')), `no half image: ${images.join(' ')}`);
    const list = JSON.parse((await bed.t.cli(['--json', 'image', 'list'])).stdout) as { name: string }[];
    assert.deepEqual(list.map((i) => i.name).sort(), ['debian-nginx', 'debian-nginx-2']);
  });

  test('no space for the build: a clear error before anything is fetched', async () => {
    const small = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-small-'));
    await exec(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', small]);
    try {
      await assert.rejects(
        buildImage({
          db: bed.t.app.db,
          recipe: 'debian',
          name: 'nospace',
          suite: 'bookworm',
          packages: ['nginx', 'postgresql-15'],
          pool: getPool(bed.t.app.db, 'main'),
          cacheDir: small,
        }),
        (e: Error & { code?: string }) => e.code === 'IMAGE_NO_SPACE' && /MiB free/.test(e.message),
      );
      assert.deepEqual(fs.readdirSync(small), []);
      assert.equal(findImage(bed.t.app.db, 'nospace'), undefined);
    } finally {
      await exec(['umount', small]);
      fs.rmdirSync(small);
    }
  });

  test('debootstrap failing half-way (the archive stops delivering packages): named, no half image, nothing in the cache', async () => {
    // The host's archive behind a mirror that passes the signed indexes and the first 8 packages, then
    // answers 404 for every .deb: debootstrap has verified the Release, read the Packages index and
    // fetched part of the system when it fails.
    const upstream = hostDebianMirror();
    const okDebs = 8;
    const served: string[] = [];
    const refused: string[] = [];
    const mirror = http.createServer((req, res) => {
      const rel = req.url ?? '/';
      if (rel.endsWith('.deb')) {
        if (served.length >= okDebs) {
          refused.push(rel);
          res.writeHead(404).end('not here any more');
          return;
        }
        served.push(rel);
      }
      http
        .get(`${upstream}${rel}`, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        })
        .on('error', () => res.destroy());
    });
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(mirror.address() as net.AddressInfo).port}`;
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-halfway-'));
    const saved = process.env.UNDERSTUDY_DEBIAN_MIRROR;
    process.env.UNDERSTUDY_DEBIAN_MIRROR = url;
    const lines: string[] = [];
    try {
      await assert.rejects(
        buildImage({
          db: bed.t.app.db,
          recipe: 'debian',
          name: 'halfway',
          suite: 'bookworm',
          packages: testImagePackages,
          pool: getPool(bed.t.app.db, 'main'),
          cacheDir: cache,
          progress: (l) => lines.push(l),
        }),
        (e: Error & { code?: string; hint?: string }) => {
          console.log(`# ${e.code}: ${e.message}\n#   hint: ${e.hint}`);
          assert.equal(e.code, 'IMAGE_BUILD_FAILED', e.message);
          assert.match(e.message, /debootstrap of bookworm stopped half-way/);
          assert.match(e.message, new RegExp(`the archive ${url} did not deliver \\d+ package`));
          assert.match(
            e.message,
            /the first that failed: \S+ at http:\/\/127\.0\.0\.1:\d+\/pool\/main\/.+\.deb/,
          );
          assert.match(e.message, /the partial tree was removed/);
          assert.match(e.hint ?? '', /apt-get update/);
          return true;
        },
      );
      assert.equal(served.length, okDebs, 'part of the system was fetched before the failure');
      assert.ok(refused.length > 0);
      assert.ok(
        lines.some((l) => l.startsWith('Retrieving')),
        lines.join('\n'),
      );
      assert.deepEqual(fs.readdirSync(cache), [], 'no tarball, no debootstrap work directory');
      const images = fs.readdirSync(path.join(getPool(bed.t.app.db, 'main').mountpoint, 'images'));
      assert.ok(!images.some((i) => i.includes('halfway') || i.includes('building')), images.join(' '));
      assert.equal(findImage(bed.t.app.db, 'halfway'), undefined);
    } finally {
      if (saved === undefined) delete process.env.UNDERSTUDY_DEBIAN_MIRROR;
      else process.env.UNDERSTUDY_DEBIAN_MIRROR = saved;
      mirror.closeAllConnections();
      await new Promise((resolve) => mirror.close(resolve));
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });

  test('import of a directory and of a tarball; the imported image boots under LXC and serves', async () => {
    const source = findImage(bed.t.app.db, 'debian-nginx')?.path ?? '';
    const fromDir = await importImage({
      db: bed.t.app.db,
      source,
      name: 'imported-dir',
      pool: getPool(bed.t.app.db, 'main'),
    });
    assert.equal(fromDir.recipe, 'import');
    const tarball = path.join(bed.t.stateDir, 'rootfs.tar');
    await exec(['tar', '-C', source, '--numeric-owner', '--xattrs', '-cf', tarball, '.'], {
      timeoutMs: 300_000,
    });
    const out = await bed.t.cli(['--json', 'image', 'import', tarball, '--name', 'imported-tar']);
    assert.equal((JSON.parse(out.stdout) as { name: string }).name, 'imported-tar');
    fs.rmSync(tarball);
    const notRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-notroot-'));
    try {
      const bad = await bed.t.cli(['image', 'import', notRoot, '--name', 'bad'], { okCodes: [1] });
      assert.match(bad.stderr, /is not a root filesystem: it has no \/etc/);
    } finally {
      fs.rmSync(notRoot, { recursive: true });
    }
    const spec = { ...bed.spec('imp', 40), image: 'imported-tar' };
    await bed.driver.create(spec);
    await bed.driver.start(spec);
    await bed.driver.waitUntilUp('imp', { timeoutMs: 60_000 });
    const answered = await waitFor(
      async () => ((await bed.client.get(`http://${bed.t.prefix}.40/`)).status === 200 ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(answered, true);
  });
});
