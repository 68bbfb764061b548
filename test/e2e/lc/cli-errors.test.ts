/** Bad input through the real CLI: a clear error naming the thing, a hint, and nothing half-made. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec } from '../../../src/core/index.ts';
import { createTestHost, repoRoot, type TestHost } from '../../helpers/host-fixture.ts';

function cliIn(stateDir: string, args: readonly string[], env?: Record<string, string>) {
  return exec(
    ['node', '--import', 'tsx', path.join(repoRoot, 'src/cli/entry.ts'), '--state-dir', stateDir, ...args],
    {
      cwd: repoRoot,
      okCodes: [0, 1, 2],
      env,
    },
  );
}

describe('CLI errors', () => {
  let t: TestHost;
  before(async () => {
    t = await createTestHost();
    await t.lc({ name: 'web', addresses: [`${t.prefix}.10`] });
  });
  after(async () => t?.dispose());

  test('host not initialised', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-empty-'));
    try {
      const out = await cliIn(empty, ['lc', 'create', 'a', '--image', 'busybox']);
      assert.equal(out.exitCode, 1);
      assert.match(out.stderr, /error: The host is not initialised/);
      assert.match(out.stderr, /hint: Run `understudy host init` first/);
      const json = await cliIn(empty, ['--json', 'lc', 'start', 'a']);
      assert.equal(
        (JSON.parse(json.stdout) as { error: { code: string } }).error.code,
        'HOST_NOT_INITIALISED',
      );
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  test('an existing name, a running LC, a missing image, an address in use, too much memory', async () => {
    const cases: [string[], RegExp][] = [
      [['lc', 'create', 'web', '--image', 'busybox'], /A logical computer named "web" already exists/],
      [['lc', 'start', 'web'], /"web" is already running[\s\S]*hint: Use `understudy lc reboot`/],
      [
        ['lc', 'create', 'x1', '--image', 'debian-nope'],
        /There is no image "debian-nope"[\s\S]*hint: Build it first/,
      ],
      [['lc', 'create', 'x2', '--image', 'busybox', '--address', `${t.prefix}.10`], /already used by LC web/],
      [
        ['lc', 'create', 'x3', '--image', 'busybox', '--address', '198.18.200.9'],
        /outside the bridge subnet/,
      ],
      [['lc', 'create', 'x4', '--image', 'busybox', '--memory', '99999999'], /memory: 99999999 MB asked/],
      [['lc', 'create', 'x5', '--image', 'busybox', '--cpus', '64'], /CPU 64 does not exist/],
      [['lc', 'create', 'x6', '--image', 'busybox', '--system-disk', '999999'], /pool "main"/],
      [['lc', 'stop', 'ghost'], /no logical computer named "ghost"/],
    ];
    for (const [args, pattern] of cases) {
      const out = await t.cli(args, { okCodes: [1, 2] });
      assert.match(out.stderr, pattern, args.join(' '));
      assert.match(out.stderr, /hint: /);
    }
    const list = JSON.parse((await t.cli(['--json', 'lc', 'list'])).stdout) as { name: string }[];
    assert.deepEqual(
      list.map((l) => l.name),
      ['web'],
      'no refused LC was half-made',
    );
    const subvolumes = (
      await exec(['btrfs', 'subvolume', 'list', '-o', path.join(t.stateDir, 'pools/main/lcs')], {
        okCodes: [0, 1],
      })
    ).stdout;
    assert.doesNotMatch(subvolumes, /x[1-6]/);
  });

  test('an invalid config file names the field', async () => {
    const file = path.join(t.stateDir, 'bad.yaml');
    fs.writeFileSync(file, 'lcs:\n  - name: a\n    memory: many\n');
    const out = await t.cli(['apply', file], { okCodes: [2] });
    assert.match(out.stderr, /lcs\[0\]\.memory/);
    const missing = await t.cli(['apply', path.join(t.stateDir, 'nope.yaml')], { okCodes: [1] });
    assert.match(missing.stderr, /nope.yaml does not exist/);
  });

  test('a needed tool missing is named with its Debian package', async () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-path-'));
    try {
      // A PATH with node and everything but btrfs-progs.
      for (const tool of ['ip', 'losetup', 'mount', 'nsenter', 'unshare', 'mkfs.btrfs', 'node']) {
        const found = ['/usr/sbin', '/usr/bin', '/sbin', '/bin']
          .map((d) => `${d}/${tool}`)
          .find((p) => fs.existsSync(p));
        if (found) fs.symlinkSync(found, path.join(bin, tool));
      }
      const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-empty-'));
      const out = await exec(
        [
          process.execPath,
          '--import',
          'tsx',
          path.join(repoRoot, 'src/cli/entry.ts'),
          '--state-dir',
          empty,
          'host',
          'init',
        ],
        {
          cwd: repoRoot,
          okCodes: [1],
          env: { PATH: bin },
        },
      );
      fs.rmSync(empty, { recursive: true, force: true });
      assert.match(out.stderr, /btrfs is not installed/);
      assert.match(out.stderr, /hint: Install it: apt-get install btrfs-progs/);
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  test('not root', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-empty-'));
    fs.chmodSync(empty, 0o777);
    try {
      const out = await exec(
        [
          'setpriv',
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          '--import',
          'tsx',
          path.join(repoRoot, 'src/cli/entry.ts'),
          '--state-dir',
          empty,
          'host',
          'init',
        ],
        {
          cwd: repoRoot,
          okCodes: [1],
        },
      );
      assert.match(out.stderr, /host init needs root/);
      assert.match(out.stderr, /hint: Run the command as root/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
