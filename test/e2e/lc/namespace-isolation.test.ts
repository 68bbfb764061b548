/**
 * What root inside a namespace LC (the project's test driver, retired for operators) cannot do, as far as
 * this driver goes: each check runs as uid 0 inside a running LC and looks on the host that nothing
 * happened. The LC has no user namespace and keeps CAP_SYS_ADMIN, so it is not isolated like an LXC LC
 * (test/e2e/lxc/lxc-isolation.test.ts); docs/logical-computers.md lists what it can still do.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { spawnProcess } from '../../../src/core/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';

/** Capability numbers (linux/capability.h) the LC's processes must not have. */
const dropped: Readonly<Record<string, number>> = {
  dac_read_search: 2,
  sys_module: 16,
  sys_rawio: 17,
  sys_ptrace: 19,
  sys_time: 25,
  mknod: 27,
  mac_override: 32,
  mac_admin: 33,
  syslog: 34,
  perfmon: 38,
  bpf: 39,
};

/** The names of the dropped capabilities present in a /proc/<pid>/status mask line, e.g. CapBnd. */
function droppedPresent(status: string, field: string): string[] {
  const hex = new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status)?.[1];
  assert.ok(hex, `${field} in ${status}`);
  const mask = BigInt(`0x${hex}`);
  return Object.entries(dropped)
    .filter(([, bit]) => (mask >> BigInt(bit)) & 1n)
    .map(([name]) => name);
}

describe('namespace LC: root inside', () => {
  let t: TestHost;
  const inWeb = async (script: string) =>
    t.host.driver.exec('web', ['sh', '-c', script], { okCodes: [0, 1, 2, 126, 127, 255] });

  before(async () => {
    t = await createTestHost();
    await t.lc({ name: 'web', addresses: [`${t.prefix}.10`] });
  });
  after(async () => t?.dispose());

  test('neither its init nor a command run in it holds the dropped capabilities', async () => {
    const out = await inWeb('id -u; echo ---; cat /proc/1/status; echo ---; cat /proc/self/status');
    const [uid, init = '', self = ''] = out.stdout.split('---\n');
    assert.equal(uid?.trim(), '0', 'the checks run as root');
    for (const [who, status] of [
      ['init', init],
      ['exec', self],
    ] as const)
      for (const field of ['CapBnd', 'CapEff', 'CapPrm', 'CapInh'])
        assert.deepEqual(droppedPresent(status, field), [], `${who} ${field}`);
  });

  test('mknod of the host root disk fails, and no block device is in its /dev', async () => {
    const dev = fs.statSync('/').dev;
    const [major, minor] = [Math.floor(dev / 256) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
    const out = await inWeb(
      `mknod /tmp/hostdisk b ${major} ${minor}; echo "mknod=$?"; head -c 512 /tmp/hostdisk > /dev/null 2>&1; echo "read=$?"; echo "block=$(find /dev -type b | wc -l)"; ls /dev`,
    );
    assert.match(out.stdout, /mknod=[1-9]/, 'mknod is refused');
    assert.match(out.stdout, /read=[1-9]/, 'no host block device can be read');
    assert.match(out.stdout, /block=0\n/);
    const names = out.stdout.split('\n').slice(3).filter(Boolean).sort();
    assert.deepEqual(names, ['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'tty', 'urandom', 'zero']);
  });

  test('writes to /proc/sys and /sys are refused (the host value is written back, so nothing changes)', async () => {
    const hostRatio = fs.readFileSync('/proc/sys/vm/overcommit_ratio', 'utf8').trim();
    const hostRcu = fs.readFileSync('/sys/kernel/rcu_expedited', 'utf8').trim();
    const out = await inWeb(
      `echo ${hostRatio} > /proc/sys/vm/overcommit_ratio; echo "procsys=$?"; echo ${hostRcu} > /sys/kernel/rcu_expedited; echo "sys=$?"; grep -E ' /proc/sys | /sys ' /proc/mounts`,
    );
    assert.match(out.stdout, /procsys=[1-9]/);
    assert.match(out.stdout, /sys=[1-9]/);
    assert.match(out.stdout, /^proc \/proc\/sys proc ro,/m, '/proc/sys is mounted read-only');
    assert.match(out.stdout, /^sysfs \/sys sysfs ro,/m, '/sys is mounted read-only');
    assert.equal(fs.readFileSync('/proc/sys/vm/overcommit_ratio', 'utf8').trim(), hostRatio);
  });

  test('loading a kernel module is refused for lack of privilege', async () => {
    // Without CAP_SYS_MODULE (checked above for every process) init_module fails with EPERM. This host's
    // kernel may have no module support at all (no /proc/modules): then the call fails with ENOSYS
    // whatever the privilege, and only the capability check above proves anything.
    const out = await inWeb('head -c 4096 /bin/sh > /tmp/evil.ko; insmod /tmp/evil.ko; echo "insmod=$?"');
    assert.match(out.stdout, /insmod=[1-9]/);
    if (fs.existsSync('/proc/modules'))
      assert.match(out.stderr, /Operation not permitted/, 'refused by privilege, not by the file format');
  });

  test('host processes are invisible and cannot be signalled', async () => {
    const victim = spawnProcess(['sleep', '300'], { stdio: 'ignore' });
    const pid = victim.child.pid ?? 0;
    try {
      const out = await inWeb(`test -e /proc/${pid}; echo "seen=$?"; kill -9 ${pid}; echo "kill=$?"`);
      assert.match(out.stdout, /seen=1/, 'the host pid is not in the LC');
      assert.match(out.stdout, /kill=[1-9]/);
      assert.doesNotThrow(() => process.kill(pid, 0), 'the host process is alive');
    } finally {
      victim.child.kill('SIGKILL');
      await victim.done.catch(() => undefined);
    }
  });
});
