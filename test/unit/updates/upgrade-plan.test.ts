/**
 * The upgrade set of a system, from its dpkg status and a feed's Packages index (real stanza shapes of
 * bookworm: nginx and nginx-common, openssl and libssl3): what moves together, and why; the errors for a
 * package the feed lacks and a dependency nothing satisfies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnderstudyError } from '../../../src/core/index.ts';
import {
  parseDpkgStatus,
  parsePackages,
  planUpgrade,
  type PackageEntry,
  type UpgradePlan,
} from '../../../src/monitor/index.ts';

interface Pkg {
  name: string;
  version: string;
  arch?: string;
  source?: string;
  depends?: string;
  preDepends?: string;
  breaks?: string;
  provides?: string;
  status?: string;
}

function fields(p: Pkg): string {
  return [
    `Package: ${p.name}`,
    ...(p.status ? [`Status: ${p.status}`] : []),
    ...(p.source ? [`Source: ${p.source}`] : []),
    `Version: ${p.version}`,
    `Architecture: ${p.arch ?? 'amd64'}`,
    ...(p.provides ? [`Provides: ${p.provides}`] : []),
    ...(p.preDepends ? [`Pre-Depends: ${p.preDepends}`] : []),
    ...(p.depends ? [`Depends: ${p.depends}`] : []),
    ...(p.breaks ? [`Breaks: ${p.breaks}`] : []),
  ].join('\n');
}

const status = (pkgs: Pkg[]): Buffer =>
  Buffer.from(
    pkgs.map((p) => `${fields({ status: 'install ok installed', ...p })}\nDescription: x\n`).join('\n'),
  );
const packages = (pkgs: Pkg[]): PackageEntry[] =>
  parsePackages(
    pkgs
      .map(
        (p) =>
          `${fields(p)}\nFilename: pool/main/${p.name}_${p.version}_${p.arch ?? 'amd64'}.deb\nSize: 10\nSHA256: ${'a'.repeat(64)}\nDescription: ${p.name}\n`,
      )
      .join('\n'),
    'test://Packages',
  );

const base: Pkg[] = [
  { name: 'libc6', version: '2.36-9+deb12u10' },
  { name: 'debconf', version: '1.5.82', arch: 'all', provides: 'debconf-2.0' },
  { name: 'iproute2', version: '6.1.0-3' },
];
const libssl3: Pkg = { name: 'libssl3', source: 'openssl', version: '3.0.20-1~deb12u2' };
const nginx = (v: string): Pkg[] => [
  {
    name: 'nginx',
    version: v,
    provides: 'httpd, httpd-cgi, nginx-abi-1.22.1-7',
    depends: `libc6 (>= 2.34), libssl3 (>= 3.0.0), iproute2, nginx-common (<< ${v}.1~), nginx-common (>= ${v})`,
    breaks: 'nginx-core (<< 1.22.1-6~)',
  },
  {
    name: 'nginx-common',
    source: 'nginx',
    version: v,
    arch: 'all',
    depends: 'debconf (>= 0.5) | debconf-2.0',
    breaks: 'nginx (<< 1.22.1-8)',
  },
];
const openssl = (v: string): Pkg[] => [
  { name: 'openssl', version: v, depends: 'libc6 (>= 2.34), libssl3 (>= 3.0.9)' },
  { name: 'libssl3', source: 'openssl', version: v, depends: 'libc6 (>= 2.34)' },
];

function plan(installed: Pkg[], feed: Pkg[], only?: string[]): UpgradePlan {
  return planUpgrade({
    installed: parseDpkgStatus(status(installed), 'lc1'),
    available: packages(feed),
    architecture: 'amd64',
    system: 'lc1',
    only,
  });
}

const summary = (p: UpgradePlan): string[] =>
  p.upgrades.map(
    (u) => `${u.package} ${u.installed ?? '-'} -> ${u.candidate} [${u.reasons.map((r) => r.kind).join(',')}]`,
  );

void test('nginx moves with nginx-common, libssl3 with openssl; nothing else', () => {
  const p = plan(
    [
      ...base,
      ...nginx('1.22.1-9+deb12u9'),
      ...openssl('3.0.20-1~deb12u2'),
      { name: 'curl', version: '7.88.1-10+deb12u14', depends: 'libc6' },
    ],
    [
      ...nginx('1.22.1-9+deb12u11'),
      { name: 'libssl3', source: 'openssl', version: '3.0.22-1~deb12u2', depends: 'libc6 (>= 2.34)' },
      { name: 'openssl', version: '3.0.22-1~deb12u2', depends: 'libc6 (>= 2.34), libssl3 (>= 3.0.9)' },
    ],
  );
  assert.deepEqual(summary(p).sort(), [
    'libssl3 3.0.20-1~deb12u2 -> 3.0.22-1~deb12u2 [newer]',
    'nginx 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11 [newer]',
    'nginx-common 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11 [newer]',
    'openssl 3.0.20-1~deb12u2 -> 3.0.22-1~deb12u2 [newer]',
  ]);
  const common = p.upgrades.find((u) => u.package === 'nginx-common');
  assert.equal(common?.source, 'nginx');
  assert.equal(common?.entry.filename, 'pool/main/nginx-common_1.22.1-9+deb12u11_all.deb');
});

void test('only nginx: the set starts from nginx alone and still takes nginx-common along; openssl stays', () => {
  const p = plan(
    [...base, ...nginx('1.22.1-9+deb12u9'), ...openssl('3.0.20-1~deb12u2')],
    [...nginx('1.22.1-9+deb12u11'), ...openssl('3.0.22-1~deb12u2')],
    ['nginx'],
  );
  assert.deepEqual(summary(p), [
    'nginx 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11 [newer]',
    'nginx-common 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11 [same-source]',
  ]);
  assert.deepEqual(
    summary(plan([...base, ...openssl('3.0.20-1~deb12u2')], nginx('1.22.1-9+deb12u11'), ['nginx'])),
    [],
  );
});

void test('same source: a sibling at an older source version moves to the build of the same source version', () => {
  // The feed has a newer nginx-common in a second, later build that nginx does not have yet: the pair
  // must move to the same source version, so nginx-common takes the build matching nginx.
  const p = plan(
    [...base, libssl3, ...nginx('1.22.1-9+deb12u9')],
    [
      ...nginx('1.22.1-9+deb12u11'),
      { name: 'nginx-common', source: 'nginx', version: '1.22.1-9+deb12u10', arch: 'all' },
    ],
  );
  const common = p.upgrades.find((u) => u.package === 'nginx-common');
  assert.equal(common?.candidate, '1.22.1-9+deb12u11');
});

void test('an exact (= version) dependency pulls the other package; reasons name it', () => {
  const p = plan(
    [
      ...base,
      { name: 'libfoo1', version: '1.0-1', source: 'foo', depends: 'libc6' },
      { name: 'foo-tools', version: '2.0-1', source: 'footools', depends: 'libfoo1 (= 1.0-1)' },
    ],
    [
      { name: 'libfoo1', version: '1.0-2', source: 'foo' },
      { name: 'foo-tools', version: '2.0-1+b1', source: 'footools (2.0-1)', depends: 'libfoo1 (= 1.0-2)' },
    ],
  );
  assert.deepEqual(summary(p), ['libfoo1 1.0-1 -> 1.0-2 [newer]', 'foo-tools 2.0-1 -> 2.0-1+b1 [newer]']);

  // Without a newer foo-tools in the feed, moving libfoo1 breaks it: a clear error, nothing planned.
  assert.throws(
    () =>
      plan(
        [
          ...base,
          { name: 'libfoo1', version: '1.0-1', source: 'foo' },
          { name: 'foo-tools', version: '2.0-1', source: 'footools', depends: 'libfoo1 (= 1.0-1)' },
        ],
        [{ name: 'libfoo1', version: '1.0-2', source: 'foo' }],
      ),
    (e: unknown) =>
      isUnderstudyError(e, 'UPDATE_PACKAGE_NOT_IN_FEED') &&
      /foo-tools 2\.0-1 must move because it depends on "libfoo1 \(= 1\.0-1\)"/.test(e.message),
  );
});

void test('reverse dependency: an installed package whose exact dependency the upgrade breaks moves too', () => {
  const p = plan(
    [
      ...base,
      { name: 'libbar1', version: '1.0-1', source: 'bar' },
      { name: 'bar-tool', version: '5-1', source: 'bartool', depends: 'libbar1 (= 1.0-1)' },
    ],
    [
      { name: 'libbar1', version: '1.0-2', source: 'bar' },
      { name: 'bar-tool', version: '5-1', source: 'bartool', depends: 'libbar1 (= 1.0-1)' },
      { name: 'bar-tool', version: '5-1+b1', source: 'bartool (5-1)', depends: 'libbar1 (= 1.0-2)' },
    ],
  );
  const tool = p.upgrades.find((u) => u.package === 'bar-tool');
  assert.equal(tool?.candidate, '5-1+b1');
  assert.deepEqual(tool?.reasons, [{ kind: 'newer' }]);
});

void test('new dependencies: one not installed is added, one too old moves; the main archive can supply them', () => {
  const p = plan(
    [...base, { name: 'app', version: '1-1', depends: 'libc6' }, { name: 'libz', version: '1.0' }],
    [
      { name: 'app', version: '1-2', depends: 'libc6 (>= 2.34), libnew (>= 2), libz (>= 1.1) | libz-ng' },
      { name: 'libnew', version: '2.1' },
      { name: 'libnew', version: '1.9' },
      { name: 'libz', version: '1.1' },
    ],
  );
  assert.deepEqual(summary(p), [
    'app 1-1 -> 1-2 [newer]',
    'libz 1.0 -> 1.1 [newer]',
    'libnew - -> 2.1 [new-dependency]',
  ]);
});

void test('a dependency that nothing satisfies is a clear error naming the package and the relation', () => {
  assert.throws(
    () =>
      plan(
        [...base, { name: 'app', version: '1-1' }],
        [{ name: 'app', version: '1-2', depends: 'libc6 (>= 2.40)' }],
      ),
    (e: unknown) =>
      isUnderstudyError(e, 'UPDATE_DEPENDENCY_UNSATISFIABLE') &&
      /app 1-2 depends on "libc6 \(>= 2\.40\)", which neither the installed packages nor the feed satisfy/.test(
        e.message,
      ),
  );
});

void test('a sibling the feed lacks at the new source version is a clear error', () => {
  assert.throws(
    () => plan([...base, libssl3, ...nginx('1.22.1-9+deb12u9')], [nginx('1.22.1-9+deb12u11')[0] as Pkg]),
    (e: unknown) =>
      isUnderstudyError(e, 'UPDATE_PACKAGE_NOT_IN_FEED') &&
      /nginx-common 1\.22\.1-9\+deb12u9 must move/.test(e.message),
  );
});

void test('virtual packages, held packages, Breaks and foreign architectures', () => {
  // debconf-2.0 is provided by debconf: nginx-common's alternative is met without moving anything.
  const held = plan(
    [
      ...base,
      libssl3,
      ...nginx('1.22.1-9+deb12u9'),
      { name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all', status: 'hold ok installed' },
      { name: 'libc6', version: '2.36-9', arch: 'i386' },
    ],
    [
      ...nginx('1.22.1-9+deb12u11'),
      { name: 'tzdata', version: '2025b-0+deb12u1', arch: 'all' },
      { name: 'libc6', version: '2.36-9+deb12u99', arch: 'i386' },
    ],
  );
  assert.deepEqual(held.held, ['tzdata']);
  assert.deepEqual(held.upgrades.map((u) => u.package).sort(), ['nginx', 'nginx-common']);

  // A held package the closure needs: refused, naming the hold.
  assert.throws(
    () =>
      plan(
        [...base, { name: 'a', version: '1' }, { name: 'b', version: '1', status: 'hold ok installed' }],
        [
          { name: 'a', version: '2', depends: 'b (>= 2)' },
          { name: 'b', version: '2' },
        ],
      ),
    (e: unknown) => isUnderstudyError(e, 'UPDATE_DEPENDENCY_UNSATISFIABLE') && /b is on hold/.test(e.message),
  );

  // The new version of a breaks an installed c: c moves to a version it does not break.
  const broken = plan(
    [...base, { name: 'a', version: '1' }, { name: 'c', version: '1' }],
    [
      { name: 'a', version: '2', breaks: 'c (<< 2)' },
      { name: 'c', version: '2' },
    ],
  );
  assert.deepEqual(summary(broken), ['a 1 -> 2 [newer]', 'c 1 -> 2 [newer]']);
  const brokenOnly = plan(
    [...base, { name: 'a', version: '1' }, { name: 'c', version: '1' }],
    [
      { name: 'a', version: '2', breaks: 'c (<< 1.5)' },
      { name: 'c', version: '1.5' },
      { name: 'c', version: '1.2' },
    ],
  );
  assert.equal(brokenOnly.upgrades.find((u) => u.package === 'c')?.candidate, '1.5');
});

void test('dpkg status: removed packages are not installed; bad input is refused before use', () => {
  const installed = parseDpkgStatus(
    status([
      { name: 'a', version: '1' },
      { name: 'gone', version: '1', status: 'deinstall ok config-files' },
      { name: 'b', version: '1:2.0-1', source: 'bsrc (2.0-1)' },
    ]),
    'lc1',
  );
  assert.deepEqual(
    installed.map((p) => [p.name, p.version, p.source, p.sourceVersion]),
    [
      ['a', '1', 'a', '1'],
      ['b', '1:2.0-1', 'bsrc', '2.0-1'],
    ],
  );
  assert.throws(
    () => parseDpkgStatus(status([{ name: 'Bad;rm', version: '1' }]), 'lc1'),
    (e: unknown) => isUnderstudyError(e, 'DPKG_STATUS_INVALID') && /lc1/.test(e.message),
  );
  assert.throws(
    () => parseDpkgStatus(Buffer.alloc(33 * 1024 * 1024, 0x20), 'lc1'),
    (e: unknown) => isUnderstudyError(e, 'DPKG_STATUS_INVALID') && /more than the limit/.test(e.message),
  );
  assert.throws(
    () => parseDpkgStatus(Buffer.from(''), 'lc1'),
    (e: unknown) => isUnderstudyError(e, 'DPKG_STATUS_INVALID'),
  );
});

void test("the host's own dpkg status parses, and planning against its own versions moves nothing", async () => {
  const fs = await import('node:fs');
  const data = fs.readFileSync('/var/lib/dpkg/status');
  const installed = parseDpkgStatus(data, 'host');
  assert.ok(installed.length > 100);
  const same = installed.map((p) => ({
    ...p,
    package: p.name,
    filename: 'x.deb',
    size: 1,
    sha256: 'a'.repeat(64),
    description: '',
  }));
  const p = planUpgrade({ installed, available: same, architecture: 'amd64', system: 'host' });
  assert.deepEqual(p.upgrades, []);
});
