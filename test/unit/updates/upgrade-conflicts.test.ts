/**
 * Conflicts and Replaces in the upgrade set, from dpkg status and Packages stanzas. The stanzas of
 * systemd-timesyncd, ntpsec, libgcc-s1, gcc-12-base and nginx are bookworm's own (fields as `apt-cache
 * show` prints them, descriptions cut); packages named `app`, `tool` and `libbar1` are made up to put
 * them in a situation, and say so in their description.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { parseDpkgStatus, parsePackages, planUpgrade, type UpgradePlan } from '../../../src/monitor/index.ts';

const libc6 = `Package: libc6
Source: glibc
Version: 2.36-9+deb12u10
Architecture: amd64
Depends: libgcc-s1
Description: GNU C Library: Shared libraries`;

const timesyncd = (v: string): string => `Package: systemd-timesyncd
Source: systemd
Version: ${v}
Architecture: amd64
Replaces: systemd (<< 245.4-2~), time-daemon
Provides: time-daemon
Depends: libc6 (>= 2.34), libsystemd-shared (= ${v}), systemd
Conflicts: time-daemon
Breaks: systemd (<< 245.4-2~)
Description: minimalistic service to synchronize local time with NTP servers`;

const systemd = (v: string): string => `Package: systemd
Version: ${v}
Architecture: amd64
Depends: libc6 (>= 2.34), libsystemd-shared (= ${v})
Description: system and service manager`;

const libsystemdShared = (v: string): string => `Package: libsystemd-shared
Source: systemd
Version: ${v}
Architecture: amd64
Depends: libc6 (>= 2.34)
Description: systemd shared private library`;

const ntpsec = `Package: ntpsec
Version: 1.2.2+dfsg1-1+deb12u1
Architecture: amd64
Replaces: ntp (<< 1:4.2.8p15+dfsg-2~), time-daemon
Provides: time-daemon
Depends: libc6 (>= 2.34)
Conflicts: time-daemon
Breaks: ntp (<< 1:4.2.8p15+dfsg-2~)
Description: Network Time Protocol daemon and utility programs`;

const gcc12Base = (v: string): string => `Package: gcc-12-base
Source: gcc-12
Version: ${v}
Architecture: amd64
Description: GCC, the GNU Compiler Collection (base package)`;

const libgccS1 = (v: string): string => `Package: libgcc-s1
Source: gcc-12
Version: ${v}
Architecture: amd64
Replaces: libgcc1 (<< 1:10)
Provides: libgcc1 (= 1:${v})
Depends: gcc-12-base (= ${v}), libc6 (>= 2.35)
Description: GCC support library`;

const installed = (stanzas: string[], held: string[] = []): ReturnType<typeof parseDpkgStatus> =>
  parseDpkgStatus(
    Buffer.from(
      stanzas
        .map((s) => {
          const name = /^Package: (\S+)/.exec(s)?.[1] ?? '';
          const status = `Status: ${held.includes(name) ? 'hold' : 'install'} ok installed`;
          return s.replace(/^(Package: .*)$/m, `$1\n${status}`);
        })
        .join('\n\n'),
    ),
    'lc1',
  );
const feed = (stanzas: string[]): ReturnType<typeof parsePackages> =>
  parsePackages(
    stanzas
      .map((s) => {
        const name = /^Package: (\S+)/.exec(s)?.[1] ?? '';
        const version = /^Version: (\S+)/m.exec(s)?.[1] ?? '';
        return `${s}\nFilename: pool/main/${name}_${version}_amd64.deb\nSize: 10\nSHA256: ${'a'.repeat(64)}`;
      })
      .join('\n\n'),
    'test://Packages',
  );
const plan = (system: string[], available: string[], held: string[] = []): UpgradePlan =>
  planUpgrade({
    installed: installed(system, held),
    available: feed(available),
    architecture: 'amd64',
    system: 'lc1',
  });
const summary = (p: UpgradePlan): string[] =>
  p.upgrades.map(
    (u) => `${u.package} ${u.installed ?? '-'} -> ${u.candidate} [${u.reasons.map((r) => r.kind).join(',')}]`,
  );

/** A made-up package whose new version needs `depends` (to bring a real package into the set). */
const app = (v: string, depends: string, extra = ''): string => `Package: app
Version: ${v}
Architecture: amd64
Depends: ${depends}${extra}
Description: made up for the test`;

void test('a package that conflicts with a virtual name it provides itself moves on its own (policy 7.6.2)', () => {
  const p = plan(
    [libc6, systemd('252.38-1~deb12u1'), libsystemdShared('252.38-1~deb12u1'), timesyncd('252.38-1~deb12u1')],
    [systemd('252.39-1~deb12u2'), libsystemdShared('252.39-1~deb12u2'), timesyncd('252.39-1~deb12u2')],
  );
  assert.deepEqual(summary(p).sort(), [
    'libsystemd-shared 252.38-1~deb12u1 -> 252.39-1~deb12u2 [newer]',
    'systemd 252.38-1~deb12u1 -> 252.39-1~deb12u2 [newer]',
    'systemd-timesyncd 252.38-1~deb12u1 -> 252.39-1~deb12u2 [newer]',
  ]);
  assert.deepEqual(p.removals, []);
});

void test('Conflicts + Replaces on a virtual name: the installed provider is removed by the new package, and said so', () => {
  // ntpsec provides time-daemon; systemd-timesyncd, pulled in as a new dependency, conflicts with and
  // replaces time-daemon: dpkg removes ntpsec when it unpacks systemd-timesyncd.
  const v = '252.39-1~deb12u2';
  const p = plan(
    [libc6, systemd(v), libsystemdShared(v), ntpsec, app('1-1', 'libc6')],
    [app('1-2', 'libc6, systemd-timesyncd'), timesyncd(v)],
  );
  assert.deepEqual(summary(p), ['app 1-1 -> 1-2 [newer]', `systemd-timesyncd - -> ${v} [new-dependency]`]);
  assert.deepEqual(p.removals, [
    {
      package: 'ntpsec',
      installed: '1.2.2+dfsg1-1+deb12u1',
      by: 'systemd-timesyncd',
      conflicts: 'time-daemon',
      replaces: 'time-daemon',
    },
  ]);
  // Held, it is neither removed nor moved: a clear error.
  assert.throws(
    () =>
      plan(
        [libc6, systemd(v), libsystemdShared(v), ntpsec, app('1-1', 'libc6')],
        [app('1-2', 'libc6, systemd-timesyncd'), timesyncd(v)],
        ['ntpsec'],
      ),
    (e: unknown) =>
      isUnderstudyError(e, 'UPDATE_DEPENDENCY_UNSATISFIABLE') &&
      /ntpsec is on hold, but .*conflicts with time-daemon.*, and systemd-timesyncd 252\.39-1~deb12u2 replaces it/.test(
        e.message,
      ),
  );
});

void test('Replaces without Conflicts changes nothing: libgcc-s1 replaces libgcc1 (<< 1:10), which stays', () => {
  const libgcc1 = `Package: libgcc1
Source: gcc-8 (8.3.0-6)
Version: 1:8.3.0-6
Architecture: amd64
Depends: gcc-8-base (= 8.3.0-6), libc6 (>= 2.2.5)
Description: GCC support library (left from buster)`;
  const p = plan(
    [libc6, gcc12Base('12.2.0-14'), libgccS1('12.2.0-14'), libgcc1],
    [gcc12Base('12.2.0-14+deb12u1'), libgccS1('12.2.0-14+deb12u1')],
  );
  assert.deepEqual(summary(p).sort(), [
    'gcc-12-base 12.2.0-14 -> 12.2.0-14+deb12u1 [newer]',
    'libgcc-s1 12.2.0-14 -> 12.2.0-14+deb12u1 [newer]',
  ]);
  assert.deepEqual(p.removals, []);
});

void test('a versioned Conflicts without Replaces: the installed package moves to a version it does not hit, or the plan fails naming it', () => {
  const libbar = (v: string): string => `Package: libbar1
Version: ${v}
Architecture: amd64
Description: made up for the test`;
  const withConflict = app('1-2', 'libc6', '\nConflicts: libbar1 (<< 2.0-1)');
  const p = plan([libc6, app('1-1', 'libc6'), libbar('1.4-3')], [withConflict, libbar('2.0-1')]);
  assert.deepEqual(summary(p), ['app 1-1 -> 1-2 [newer]', 'libbar1 1.4-3 -> 2.0-1 [newer]']);

  // The feed's only libbar1 still conflicts: the error names both packages and the relation.
  assert.throws(
    () => plan([libc6, app('1-1', 'libc6'), libbar('1.4-3')], [withConflict]),
    (e: unknown) =>
      isUnderstudyError(e, 'UPDATE_DEPENDENCY_UNSATISFIABLE') &&
      /app 1-2 conflicts with libbar1 \(<< 2\.0-1\), which the installed libbar1 1\.4-3 is; app 1-2 does not replace libbar1/.test(
        e.message,
      ) &&
      /Remove libbar1 inside the LC/.test(e.hint ?? ''),
  );

  // A conflict between two packages that both move is the feed's own inconsistency.
  assert.throws(
    () => plan([libc6, app('1-1', 'libc6'), libbar('1.4-3')], [withConflict, libbar('1.9-1')]),
    (e: unknown) =>
      isUnderstudyError(e, 'UPDATE_DEPENDENCY_UNSATISFIABLE') &&
      /app 1-2 conflicts with libbar1 \(<< 2\.0-1\), and libbar1 1\.9-1 moves with it/.test(e.message),
  );
});

void test("an installed package's own Conflicts that hits a new version: it moves to a version without it", () => {
  // nginx's real stanza moves; the made-up `tool` conflicts with nginx from 1.22.1-9+deb12u10 on.
  const nginx = (v: string): string => `Package: nginx
Version: ${v}
Architecture: amd64
Replaces: nginx-core (<< 1.22.1-6~), nginx-extras (<< 1.22.1-6~), nginx-light (<< 1.22.1-6~)
Provides: httpd, httpd-cgi, nginx-abi-1.22.1-7
Depends: libc6 (>= 2.34)
Breaks: nginx-core (<< 1.22.1-6~), nginx-extras (<< 1.22.1-6~), nginx-light (<< 1.22.1-6~)
Description: small, powerful, scalable web/proxy server`;
  const tool = (v: string, conflicts: string): string => `Package: tool
Version: ${v}
Architecture: amd64
Conflicts: ${conflicts}
Description: made up for the test`;
  const p = plan(
    [libc6, nginx('1.22.1-9+deb12u9'), tool('3-1', 'nginx (>= 1.22.1-9+deb12u10)')],
    [nginx('1.22.1-9+deb12u11'), tool('3-2', 'nginx (>= 1.24)')],
  );
  assert.deepEqual(summary(p), [
    'nginx 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11 [newer]',
    'tool 3-1 -> 3-2 [newer]',
  ]);
  // Without a newer tool in the feed, nothing resolves the conflict: an error naming it.
  assert.throws(
    () =>
      plan(
        [libc6, nginx('1.22.1-9+deb12u9'), tool('3-1', 'nginx (>= 1.22.1-9+deb12u10)')],
        [nginx('1.22.1-9+deb12u11')],
      ),
    (e: unknown) =>
      isUnderstudyError(e, 'UPDATE_DEPENDENCY_UNSATISFIABLE') &&
      /the installed tool 3-1 conflicts with nginx \(>= 1\.22\.1-9\+deb12u10\), the new version of nginx/.test(
        e.message,
      ),
  );
});
