/**
 * Taking over an LXC container the operator already runs: an unprivileged Debian container (its tree
 * shifted by its idmap base, its own config with MAC and address) is refused while it runs, and while
 * it uses a feature understudy does not carry over (each named), with nothing created; then read,
 * imported as an image with its owners shifted back, and boots under the LXC driver with its MAC and
 * address, serving as before.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec, waitFor } from '../../../src/core/index.ts';
import { inspectExistingContainer } from '../../../src/drivers/index.ts';
import { findImage } from '../../../src/images/index.ts';
import { createLxcBed, type LxcBed } from './lxc-fixture.ts';

/** A uid base inside root's subordinate ids, far above the ranges understudy leases first. */
const base = 60_000_000;

function shiftUp(root: string): void {
  const visit = (file: string): void => {
    const stat = fs.lstatSync(file);
    fs.lchownSync(file, stat.uid + base, stat.gid + base);
    if (!stat.isSymbolicLink() && (stat.mode & 0o6000) !== 0) fs.chmodSync(file, stat.mode & 0o7777);
    if (stat.isDirectory()) for (const entry of fs.readdirSync(file)) visit(path.join(file, entry));
  };
  visit(root);
}

describe('import of an existing LXC container', () => {
  let bed: LxcBed;
  let lxcPath: string;
  const name = 'legacy';
  before(async () => {
    bed = await createLxcBed();
    lxcPath = path.join(bed.t.stateDir, 'operator-lxc');
    // Like /var/lib/lxc: the container's root (an unprivileged host uid) must be able to reach its tree.
    fs.chmodSync(bed.t.stateDir, 0o711);
    const rootfs = path.join(lxcPath, name, 'rootfs');
    fs.mkdirSync(path.dirname(rootfs), { recursive: true });
    await exec(['cp', '-a', `${findImage(bed.t.app.db, 'debian-nginx')?.path ?? ''}/.`, rootfs], {
      timeoutMs: 300_000,
    });
    fs.rmSync(path.join(rootfs, 'etc/systemd/system/multi-user.target.wants/understudy-booted.service'));
    fs.writeFileSync(path.join(rootfs, 'var/www/html/index.nginx-debian.html'), 'legacy site\n');
    shiftUp(rootfs);
    fs.writeFileSync(
      path.join(lxcPath, name, 'config'),
      [
        'lxc.include = /usr/share/lxc/config/common.conf',
        'lxc.include = /usr/share/lxc/config/userns.conf',
        'lxc.arch = linux64',
        `lxc.idmap = u 0 ${base} 65536`,
        `lxc.idmap = g 0 ${base} 65536`,
        `lxc.rootfs.path = dir:${rootfs}`,
        `lxc.uts.name = ${name}`,
        'lxc.apparmor.profile = unconfined',
        'lxc.net.0.type = veth',
        `lxc.net.0.link = ${bed.t.host.network.bridge}`,
        'lxc.net.0.flags = up',
        'lxc.net.0.hwaddr = 02:75:73:aa:bb:cc',
        `lxc.net.0.ipv4.address = ${bed.t.prefix}.70/24`,
        'lxc.cgroup.memory.limit_in_bytes = 268435456',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await exec(['lxc-stop', '-P', lxcPath, '-n', name, '-k'], { okCodes: [0, 1, 2] }).catch(() => undefined);
    await bed?.dispose();
  });

  test('a running container is refused, named, with the command that stops it', async () => {
    await exec(['lxc-start', '-P', lxcPath, '-n', name]);
    try {
      await waitFor(
        async () =>
          (await bed.client.get(`http://${bed.t.prefix}.70/`)).body === 'legacy site\n' ? true : undefined,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      await assert.rejects(
        inspectExistingContainer({ lxcPath, name }),
        (e: Error & { code?: string; hint?: string }) =>
          e.code === 'LXC_IMPORT_RUNNING' &&
          /"legacy" is RUNNING/.test(e.message) &&
          /lxc-stop/.test(e.hint ?? ''),
      );
      const error = await importError();
      assert.equal(error.code, 'LXC_IMPORT_RUNNING', error.message);
      assert.match(error.hint ?? '', new RegExp(`lxc-stop -P ${lxcPath} -n legacy`));
      await nothingCreated();
    } finally {
      await exec(['lxc-stop', '-P', lxcPath, '-n', name, '-t', '20']);
    }
  });

  /** `understudy lc import legacy` that must fail: its --json error. */
  const importError = async (): Promise<{ code: string; message: string; hint?: string }> => {
    const out = await bed.t.cli(['--json', 'lc', 'import', name, '--lxc-path', lxcPath], { okCodes: [1] });
    return (JSON.parse(out.stdout) as { error: { code: string; message: string; hint?: string } }).error;
  };

  /** A refused import made no LC and no image, and left the operator's container as it was. */
  const nothingCreated = async (): Promise<void> => {
    const lcs = JSON.parse((await bed.t.cli(['--json', 'lc', 'list'])).stdout) as { name: string }[];
    assert.ok(!lcs.some((l) => l.name === name), `no LC "${name}"`);
    assert.equal(findImage(bed.t.app.db, `${name}-imported`), undefined, 'no image');
    const passwd = fs.lstatSync(path.join(lxcPath, name, 'rootfs/etc/passwd'));
    assert.equal(passwd.uid, base, "the container's tree is untouched");
  };

  test('features understudy does not carry over are refused, each by name, through lc import; nothing is created', async () => {
    const configFile = path.join(lxcPath, name, 'config');
    const original = fs.readFileSync(configFile, 'utf8');
    const bridge = bed.t.host.network.bridge;
    const cases: [string, string[], RegExp][] = [
      ['nesting', ['lxc.include = /usr/share/lxc/config/nesting.conf'], /uses nesting \(nesting\.conf\)/],
      ['an LVM root', ['lxc.rootfs.path = lvm:/dev/vg0/legacy'], /uses a "lvm" root filesystem/],
      ['a host mount', ['lxc.mount.entry = /srv/data srv/data none bind 0 0'], /uses a mount of a host path/],
      ['a hook', ['lxc.hook.pre-start = /usr/local/bin/prepare'], /uses a hook \(lxc\.hook\.pre-start\)/],
      [
        'extra devices',
        ['lxc.cgroup.devices.allow = b 8:* rwm'],
        /uses extra devices \(lxc\.cgroup\.devices\.allow/,
      ],
      ['kept capabilities', ['lxc.cap.keep = sys_admin'], /uses lxc\.cap\.keep/],
      [
        'a phys NIC',
        ['lxc.net.1.type = phys', 'lxc.net.1.link = eth1'],
        /uses a "phys" network device \(lxc\.net\.1\.type\)/,
      ],
      ['a MAC template', ['lxc.net.0.hwaddr = 02:75:73:xx:xx:xx'], /uses a MAC address template/],
      [
        'a second NIC',
        ['lxc.net.1.type = veth', `lxc.net.1.link = ${bridge}`, 'lxc.net.1.hwaddr = 02:75:73:aa:bb:cd'],
        /has 2 NICs; an imported LC takes one/,
      ],
      ['an unknown setting', ['lxc.sched.core = 1'], /uses the setting lxc\.sched\.core/],
    ];
    try {
      for (const [what, lines, pattern] of cases) {
        fs.writeFileSync(configFile, `${original}${lines.join('\n')}\n`);
        const error = await importError();
        assert.equal(error.code, 'LXC_IMPORT_UNSUPPORTED', `${what}: ${error.message}`);
        assert.match(error.message, /The LXC container "legacy" /, what);
        assert.match(error.message, pattern, what);
        assert.match(error.hint ?? '', /import (it|again)/, `${what}: a hint what to do`);
        console.log(`# ${what}: ${error.message}`);
      }
      await nothingCreated();
    } finally {
      fs.writeFileSync(configFile, original);
    }
  });

  test('the stopped container becomes an LC: owners shifted back, same MAC and address, same site', async () => {
    const existing = await inspectExistingContainer({ lxcPath, name });
    assert.deepEqual(existing.idmap, { uidBase: base, gidBase: base, size: 65536 });
    assert.equal(existing.memoryMb, 256);
    const out = await bed.t.cli(['--json', 'lc', 'import', name, '--lxc-path', lxcPath]);
    const record = JSON.parse(out.stdout) as {
      driver: string;
      image: string;
      memoryMb: number;
      nics: { mac: string }[];
    };
    assert.equal(record.driver, 'lxc');
    assert.equal(record.memoryMb, 256);
    assert.deepEqual(
      record.nics.map((n) => n.mac),
      ['02:75:73:aa:bb:cc'],
    );
    const image = findImage(bed.t.app.db, record.image);
    assert.ok(image);
    assert.equal(image.inputs?.lxcContainer, existing.configFile);
    const passwd = fs.lstatSync(path.join(image.path, 'etc/passwd'));
    assert.deepEqual([passwd.uid, passwd.gid], [0, 0], 'owners shifted back to what the container sees');
    const su = fs.statSync(path.join(image.path, 'usr/bin/su'));
    assert.equal(su.mode & 0o4000, 0o4000, 'set-uid bits kept');
    await bed.t.cli(['lc', 'start', name]);
    const served = await waitFor(
      async () =>
        (await bed.client.get(`http://${bed.t.prefix}.70/`)).body === 'legacy site\n' ? true : undefined,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(served, true, 'the same site at the same address');
    const inside = await bed.t.cli([
      'lc',
      'exec',
      name,
      '--',
      'sh',
      '-c',
      'stat -c %u /etc/passwd; cat /sys/class/net/eth0/address',
    ]);
    assert.deepEqual(inside.stdout.trim().split('\n'), ['0', '02:75:73:aa:bb:cc']);
    const again = await bed.t.cli(['lc', 'import', 'nope', '--lxc-path', lxcPath], { okCodes: [1] });
    assert.match(again.stderr, /There is no LXC container "nope"/);
  });
});
