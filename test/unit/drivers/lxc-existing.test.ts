/** Reading an LXC container the operator already runs, for `lc import`: what is taken, what is refused by name. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseExistingConfig } from '../../../src/drivers/index.ts';

const debianUnprivileged = `# Template used to create this container: /usr/share/lxc/templates/lxc-download
lxc.include = /usr/share/lxc/config/common.conf
lxc.include = /usr/share/lxc/config/userns.conf
lxc.arch = linux64
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.rootfs.path = dir:/var/lib/lxc/web/rootfs
lxc.uts.name = web
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.flags = up
lxc.net.0.hwaddr = 00:16:3E:12:34:56
lxc.net.0.ipv4.address = 198.18.0.50/24
lxc.net.0.ipv4.gateway = 198.18.0.1
lxc.apparmor.profile = generated
lxc.cgroup.memory.limit_in_bytes = 536870912
lxc.cgroup.cpuset.cpus = 1
`;

describe('existing LXC containers', () => {
  test('an unprivileged Debian container: rootfs, NIC with MAC and address, idmap, limits', () => {
    const c = parseExistingConfig('web', '/var/lib/lxc/web/config', debianUnprivileged);
    assert.equal(c.rootfs, '/var/lib/lxc/web/rootfs');
    assert.deepEqual(c.nics, [
      { index: 0, name: 'eth0', mac: '00:16:3e:12:34:56', bridge: 'br0', addresses: ['198.18.0.50/24'] },
    ]);
    assert.deepEqual(c.idmap, { uidBase: 100000, gidBase: 100000, size: 65536 });
    assert.equal(c.memoryMb, 512);
    assert.equal(c.cpus, '1');
  });

  test('a privileged container has no idmap; a bare rootfs path is a directory', () => {
    const c = parseExistingConfig(
      'db',
      '/x/config',
      'lxc.rootfs.path = /srv/lxc/db/rootfs\nlxc.net.0.type = empty\n',
    );
    assert.equal(c.rootfs, '/srv/lxc/db/rootfs');
    assert.equal(c.idmap, undefined);
    assert.deepEqual(c.nics, []);
  });

  test('features understudy does not carry over are refused by name', () => {
    const cases: [string, RegExp][] = [
      ['lxc.mount.entry = /data srv/data none bind 0 0', /a mount of a host path \(\/data srv\/data/],
      ['lxc.include = /usr/share/lxc/config/nesting.conf', /nesting/],
      ['lxc.net.1.type = phys\nlxc.net.1.link = eth3', /a "phys" network device/],
      ['lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx', /a MAC address template/],
      ['lxc.hook.pre-start = /usr/local/bin/x', /a hook \(lxc\.hook\.pre-start\)/],
      ['lxc.cgroup.devices.allow = c 10:200 rwm', /extra devices/],
      ['lxc.idmap = u 0 100000 1000\nlxc.idmap = u 1000 1000 1', /an idmap other than one range/],
      ['lxc.environment = FOO=bar', /the setting lxc\.environment/],
    ];
    for (const [extra, pattern] of cases) {
      assert.throws(
        () => parseExistingConfig('web', '/c', `${debianUnprivileged}${extra}\n`),
        (e: Error & { code?: string }) => e.code === 'LXC_IMPORT_UNSUPPORTED' && pattern.test(e.message),
        extra,
      );
    }
    assert.throws(
      () => parseExistingConfig('web', '/c', 'lxc.rootfs.path = lvm:/dev/vg/web\n'),
      /a "lvm" root filesystem/,
    );
  });
});
