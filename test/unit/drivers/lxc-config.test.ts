/** The LXC configuration an LC runs with, for cgroup v1 (this host) and v2, and its idmap ranges. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  candidateBases,
  idmapSize,
  leaseIdmap,
  lxcConfig,
  parseSubids,
  releaseIdmap,
  type LxcConfigInput,
} from '../../../src/drivers/index.ts';

const input: LxcConfigInput = {
  containerName: 'usab12-web',
  hostname: 'web',
  rootfs: '/pools/main/lcs/web/system',
  idmap: { uidBase: 1065536, gidBase: 1065536, size: 65536 },
  mounts: [{ source: '/pools/main/lcs/web/app', target: '/srv/app' }],
  controlDir: '/state/lxc/usab12-web/control',
  limits: {
    cpus: '0-1',
    cpuSharePercent: 150,
    memoryMb: 256,
    pidsMax: 512,
    writeBps: [{ device: '7:3', bytesPerSecond: 1048576 }],
  },
  cgroupVersion: 1,
  memsw: true,
  init: 'systemd',
  startHostHook: ['/opt/understudy/lxc-start-host.sh', '/state/lxc/usab12-web'],
  consoleLog: '/state/lxc/usab12-web/console.log',
  lxcLog: '/state/lxc/usab12-web/lxc.log',
};

const keys = (text: string): Map<string, string[]> => {
  const map = new Map<string, string[]>();
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    const [key = '', value = ''] = line.split(' = ');
    map.set(key, [...(map.get(key) ?? []), value]);
  }
  return map;
};

describe('LXC config', () => {
  test('unprivileged: userns, its own idmap, idmapped root and disks, seccomp, no AppArmor profile', () => {
    const c = keys(lxcConfig(input));
    assert.deepEqual(c.get('lxc.include'), [
      '/usr/share/lxc/config/common.conf',
      '/usr/share/lxc/config/userns.conf',
    ]);
    assert.deepEqual(c.get('lxc.idmap'), ['u 0 1065536 65536', 'g 0 1065536 65536']);
    assert.deepEqual(c.get('lxc.rootfs.path'), ['dir:/pools/main/lcs/web/system']);
    assert.deepEqual(c.get('lxc.rootfs.options'), ['idmap=container']);
    assert.deepEqual(c.get('lxc.mount.auto'), ['proc:mixed sys:mixed cgroup:mixed']);
    assert.deepEqual(c.get('lxc.apparmor.profile'), ['unconfined']);
    const mounts = c.get('lxc.mount.entry') ?? [];
    assert.equal(mounts[0], '/pools/main/lcs/web/app srv/app none bind,create=dir,idmap=container 0 0');
    // /run comes before the control channel so that the channel is visible inside it.
    assert.match(mounts[1] ?? '', /^tmpfs run tmpfs /);
    assert.equal(mounts[2], '/state/lxc/usab12-web/control run/understudy none bind,create=dir 0 0');
    assert.deepEqual(c.get('lxc.net.0.type'), ['empty']);
    assert.deepEqual(c.get('lxc.hook.start-host'), [
      '/opt/understudy/lxc-start-host.sh /state/lxc/usab12-web',
    ]);
    assert.deepEqual(c.get('lxc.signal.halt'), ['SIGRTMIN+3']);
    assert.deepEqual(c.get('lxc.signal.reboot'), ['SIGINT']);
  });

  test('cgroup v1 limits: cpuset, CFS quota, memory and memsw, pids, blkio throttle', () => {
    const c = keys(lxcConfig(input));
    assert.deepEqual(c.get('lxc.cgroup.cpuset.cpus'), ['0-1']);
    assert.deepEqual(c.get('lxc.cgroup.cpu.cfs_period_us'), ['100000']);
    assert.deepEqual(c.get('lxc.cgroup.cpu.cfs_quota_us'), ['150000']);
    assert.deepEqual(c.get('lxc.cgroup.memory.limit_in_bytes'), [String(256 * 1024 * 1024)]);
    assert.deepEqual(c.get('lxc.cgroup.memory.memsw.limit_in_bytes'), [String(256 * 1024 * 1024)]);
    assert.deepEqual(c.get('lxc.cgroup.pids.max'), ['512']);
    assert.deepEqual(c.get('lxc.cgroup.blkio.throttle.write_bps_device'), ['7:3 1048576']);
    assert.equal([...c.keys()].filter((k) => k.startsWith('lxc.cgroup2.')).length, 0);
    const noSwap = keys(lxcConfig({ ...input, memsw: false }));
    assert.equal(noSwap.get('lxc.cgroup.memory.memsw.limit_in_bytes'), undefined);
  });

  test('cgroup v2 limits: cpuset, cpu.max, memory.max without swap, pids.max, io.max', () => {
    const c = keys(lxcConfig({ ...input, cgroupVersion: 2 }));
    assert.deepEqual(c.get('lxc.cgroup2.cpuset.cpus'), ['0-1']);
    assert.deepEqual(c.get('lxc.cgroup2.cpu.max'), ['150000 100000']);
    assert.deepEqual(c.get('lxc.cgroup2.memory.max'), [String(256 * 1024 * 1024)]);
    assert.deepEqual(c.get('lxc.cgroup2.memory.swap.max'), ['0']);
    assert.deepEqual(c.get('lxc.cgroup2.pids.max'), ['512']);
    assert.deepEqual(c.get('lxc.cgroup2.io.max'), ['7:3 wbps=1048576']);
    assert.equal([...c.keys()].filter((k) => k.startsWith('lxc.cgroup.')).length, 0);
  });

  test('the init decides the halt and reboot signals', () => {
    const busybox = keys(lxcConfig({ ...input, init: 'busybox' }));
    assert.deepEqual(busybox.get('lxc.signal.halt'), ['SIGUSR2']);
    assert.deepEqual(busybox.get('lxc.signal.reboot'), ['SIGTERM']);
  });

  test('a value with a newline cannot inject a key', () => {
    assert.throws(
      () => lxcConfig({ ...input, hostname: 'web\nlxc.apparmor.profile = unconfined' }),
      /newline/,
    );
  });
});

describe('idmap ranges', () => {
  test('root ranges from subuid/subgid, whole blocks present in both', () => {
    const uids = parseSubids('alice:100000:65536\nroot:1000000:196608\n0:5000000:65536\n');
    assert.deepEqual(uids, [
      { start: 1000000, count: 196608 },
      { start: 5000000, count: 65536 },
    ]);
    const gids = parseSubids('root:1000000:131072\n');
    assert.deepEqual(candidateBases(uids, gids), [1000000, 1065536]);
  });

  test('each LC leases its own range; a released range is reused; a vanished owner loses its lease', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-idmap-'));
    try {
      fs.writeFileSync(path.join(dir, 'subuid'), `root:1000000:${3 * idmapSize}\n`);
      fs.writeFileSync(path.join(dir, 'subgid'), `root:1000000:${3 * idmapSize}\n`);
      const options = {
        leaseDir: path.join(dir, 'leases'),
        subuidFile: path.join(dir, 'subuid'),
        subgidFile: path.join(dir, 'subgid'),
      };
      const owners = ['a', 'b', 'c'].map((n) => {
        fs.mkdirSync(path.join(dir, n));
        return path.join(dir, n);
      });
      const [a, b, c] = owners.map((o) => leaseIdmap(options, o));
      assert.deepEqual(
        [a?.uidBase, b?.uidBase, c?.uidBase],
        [1000000, 1000000 + idmapSize, 1000000 + 2 * idmapSize],
      );
      assert.equal(leaseIdmap(options, owners[0] ?? '').uidBase, 1000000, 'the same owner keeps its range');
      fs.mkdirSync(path.join(dir, 'd'));
      assert.throws(() => leaseIdmap(options, path.join(dir, 'd')), /are leased/);
      releaseIdmap(options, owners[1] ?? '');
      assert.equal(leaseIdmap(options, path.join(dir, 'd')).uidBase, 1000000 + idmapSize);
      fs.rmSync(owners[2] ?? '', { recursive: true });
      fs.mkdirSync(path.join(dir, 'e'));
      assert.equal(leaseIdmap(options, path.join(dir, 'e')).uidBase, 1000000 + 2 * idmapSize);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no subordinate ids for root: a clear error with the command that fixes it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-idmap-'));
    try {
      fs.writeFileSync(path.join(dir, 'subuid'), 'alice:100000:65536\n');
      fs.writeFileSync(path.join(dir, 'subgid'), '');
      assert.throws(
        () =>
          leaseIdmap(
            {
              leaseDir: path.join(dir, 'l'),
              subuidFile: path.join(dir, 'subuid'),
              subgidFile: path.join(dir, 'subgid'),
            },
            dir,
          ),
        (e: Error & { code?: string; hint?: string }) =>
          e.code === 'LXC_IDMAP_UNAVAILABLE' && /usermod --add-subuids/.test(e.hint ?? ''),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
