/**
 * Root inside an LXC LC must not be able to harm the host or another LC. Each test runs the attack as
 * uid 0 inside a running LC (real systemd, real Debian) and checks, on the host, that nothing happened.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { spawnProcess } from '../../../src/core/index.ts';
import type { LcSpec } from '../../../src/drivers/index.ts';
import { createLxcBed, type LxcBed } from './lxc-fixture.ts';

describe('LXC isolation: root in an LC', () => {
  let bed: LxcBed;
  let web: LcSpec;
  let other: LcSpec;
  const run = crypto.randomBytes(4).toString('hex');
  const inWeb = async (script: string) =>
    bed.driver.exec('web', ['sh', '-c', script], { okCodes: [0, 1, 2, 126, 127, 255] });

  before(async () => {
    bed = await createLxcBed();
    web = bed.spec('web', 20);
    other = bed.spec('other', 21);
    for (const spec of [web, other]) {
      await bed.driver.create(spec);
      await bed.driver.start(spec);
    }
    for (const spec of [web, other]) await bed.driver.waitUntilUp(spec.name, { timeoutMs: 60_000 });
  });
  after(async () => bed?.dispose());

  test('its uid 0 is an unprivileged uid on the host, different from another LC', async () => {
    const uidOf = (pid: number | undefined): number =>
      Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    const webInit = (await bed.driver.status('web')).initPid;
    const otherInit = (await bed.driver.status('other')).initPid;
    assert.equal((await inWeb('id -u')).stdout.trim(), '0');
    const webUid = uidOf(webInit);
    const otherUid = uidOf(otherInit);
    assert.ok(webUid >= 100_000, `web's root is host uid ${webUid}`);
    assert.ok(otherUid >= 100_000, `other's root is host uid ${otherUid}`);
    assert.ok(Math.abs(webUid - otherUid) >= 65536, 'the two LCs have disjoint id ranges');
    assert.match(
      fs.readFileSync(`/proc/${webInit}/uid_map`, 'utf8'),
      new RegExp(`^\\s*0\\s+${webUid}\\s+65536`),
    );
  });

  test('mknod of the host root disk and opening it fail', async () => {
    const dev = fs.statSync('/').dev;
    const [major, minor] = [Math.floor(dev / 256) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
    const out = await inWeb(
      `mknod /tmp/hostdisk b ${major} ${minor}; echo "mknod=$?"; head -c 512 /tmp/hostdisk > /tmp/read 2>&1; echo "read=$?"; head -c 512 /dev/vda > /dev/null 2>&1; echo "devvda=$?"`,
    );
    assert.match(out.stdout, /mknod=[1-9]/, 'mknod is refused');
    assert.match(out.stdout, /read=[1-9]/, 'no host block device can be read');
    assert.match(out.stdout, /devvda=[1-9]/);
  });

  test('writes to /proc/sys and /sys do not reach the host', async () => {
    const hostRatio = fs.readFileSync('/proc/sys/vm/overcommit_ratio', 'utf8').trim();
    const hostRcu = fs.readFileSync('/sys/kernel/rcu_expedited', 'utf8').trim();
    const out = await inWeb(
      `echo 77 > /proc/sys/vm/overcommit_ratio; echo "procsys=$?"; echo ${hostRcu === '0' ? 1 : 0} > /sys/kernel/rcu_expedited; echo "sys=$?"; echo h > /proc/sysrq-trigger; echo "sysrq=$?"`,
    );
    assert.match(out.stdout, /procsys=[1-9]/);
    assert.match(out.stdout, /sys=[1-9]/);
    assert.match(out.stdout, /sysrq=[1-9]/);
    assert.equal(fs.readFileSync('/proc/sys/vm/overcommit_ratio', 'utf8').trim(), hostRatio);
    assert.equal(fs.readFileSync('/sys/kernel/rcu_expedited', 'utf8').trim(), hostRcu);
  });

  test('loading a kernel module is refused for lack of privilege', async () => {
    // This host's kernel may have no module support at all (no /proc/modules); the LC's seccomp filter
    // refuses the call before the kernel looks, either way.
    const modules = (): string | undefined =>
      fs.existsSync('/proc/modules') ? fs.readFileSync('/proc/modules', 'utf8') : undefined;
    const modulesBefore = modules();
    // Any file will do: the kernel checks the privilege before it reads the module.
    const out = await inWeb('head -c 4096 /bin/sh > /tmp/evil.ko; insmod /tmp/evil.ko; echo "insmod=$?"');
    assert.match(out.stdout, /insmod=[1-9]/);
    assert.match(out.stderr, /Operation not permitted/, 'refused by privilege, not by the file format');
    assert.equal(modules(), modulesBefore);
  });

  test('host processes are invisible and cannot be signalled', async () => {
    const victim = spawnProcess(['sleep', '300'], { stdio: 'ignore' });
    const pid = victim.child.pid ?? 0;
    try {
      const out = await inWeb(
        `ls /proc | grep -c '^[0-9]'; test -e /proc/${pid}; echo "seen=$?"; kill -9 ${pid}; echo "kill=$?"`,
      );
      assert.match(out.stdout, /seen=1/, 'the host pid is not in the LC');
      assert.match(out.stdout, /kill=[1-9]/);
      assert.doesNotThrow(() => process.kill(pid, 0), 'the host process is alive');
      const insideCount = Number(out.stdout.split('\n')[0]);
      assert.ok(insideCount < 60, `the LC sees only its own ${insideCount} processes`);
    } finally {
      victim.child.kill('SIGKILL');
      await victim.done.catch(() => undefined);
    }
  });

  test('a symlink planted by the LC does not make the manager read or write a host file', async () => {
    const hostSecret = `/etc/understudy-secret-${run}`;
    const hostTarget = `/etc/understudy-pwned-${run}`;
    fs.writeFileSync(hostSecret, `host secret ${run}\n`, { mode: 0o600 });
    try {
      await inWeb(
        [
          `ln -sf ${hostSecret} /root/report.txt`,
          `ln -sf ${hostTarget} /root/config.txt`,
          `ln -sf ${hostSecret} /run/understudy/outbox/1-1-evil.json`,
          'mkfifo /run/understudy/outbox/2-1-fifo.json',
        ].join('; '),
      );
      await assert.rejects(
        bed.driver.readFile(web, '/root/report.txt'),
        (e: Error & { code?: string }) => e.code === 'ENOENT',
        'the link resolves inside the LC, where that file does not exist',
      );
      await bed.driver.writeFile(web, '/root/config.txt', 'written by the manager\n');
      assert.equal(fs.existsSync(hostTarget), false, 'no file was created on the host');
      const inside = await inWeb(`cat ${hostTarget}`);
      assert.equal(inside.stdout, 'written by the manager\n', 'the write landed inside the LC');
      const reports = await bed.driver.readReports('web');
      assert.ok(!JSON.stringify(reports).includes(run), 'no report carries the host file');
    } finally {
      fs.rmSync(hostSecret, { force: true });
      fs.rmSync(hostTarget, { force: true });
    }
  });

  test("another LC's disk is out of reach", async () => {
    const token = `other-lc-secret-${run}`;
    await bed.driver.writeFile(other, '/srv/app/secret.txt', `${token}\n`);
    assert.equal((await bed.driver.exec('other', ['cat', '/srv/app/secret.txt'])).stdout.trim(), token);
    const hostPath = bed.driver.diskPath(other, 'app');
    const out = await inWeb(
      `cat ${hostPath}/secret.txt; echo "direct=$?"; grep -rs ${token} /srv /run /tmp /var /mnt /root; echo "grep=$?"; ls /dev | grep -c -E '^(loop|vd|sd|nvme|zram)'; mount -t btrfs /dev/loop0 /mnt; echo "mount=$?"`,
    );
    assert.match(out.stdout, /direct=[1-9]/);
    assert.match(out.stdout, /grep=1/, 'the token is nowhere in the LC');
    assert.match(out.stdout, /\n0\n/, 'no block device node in the LC');
    assert.match(out.stdout, /mount=[1-9]/);
    assert.ok(!out.stdout.includes(token));
  });
});
