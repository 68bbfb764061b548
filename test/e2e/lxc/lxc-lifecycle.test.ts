/**
 * The LXC driver end to end: a real unprivileged LXC container booting real systemd from a real Debian
 * image, with unmodified Debian nginx answering HTTP from a client namespace on the test bridge.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec, waitFor } from '../../../src/core/index.ts';
import type { LcSpec } from '../../../src/drivers/index.ts';
import { getPool } from '../../../src/host/index.ts';
import { createLxcBed, type LxcBed } from './lxc-fixture.ts';

describe('LXC driver lifecycle', () => {
  let bed: LxcBed;
  let web: LcSpec;
  let url: string;
  before(async () => {
    bed = await createLxcBed();
    web = bed.spec('web', 10);
    url = `http://${bed.t.prefix}.10/`;
  });
  after(async () => bed?.dispose());

  const nginxAnswers = async (timeoutMs = 20_000): Promise<boolean> =>
    (await waitFor(async () => ((await bed.client.get(url)).status === 200 ? true : undefined), {
      timeoutMs,
      intervalMs: 100,
    })) === true;

  test('create and boot: systemd is PID 1, start-up is reported over the control channel, nginx answers', async () => {
    await bed.driver.create(web);
    const started = performance.now();
    await bed.driver.start(web);
    await bed.driver.waitUntilUp('web', { timeoutMs: 60_000 });
    assert.ok(await nginxAnswers(), 'nginx answers HTTP from the client namespace');
    const bootMs = performance.now() - started;
    const response = await bed.client.get(url);
    assert.match(response.body, /Welcome to nginx/);
    const inside = await bed.driver.exec('web', [
      'sh',
      '-c',
      'cat /proc/1/comm; hostname; systemctl is-active nginx',
    ]);
    assert.deepEqual(inside.stdout.trim().split('\n'), ['systemd', 'web', 'active']);
    const status = await bed.driver.status('web');
    assert.equal(status.state, 'running');
    assert.equal(status.reboots, 0);
    const reports = await bed.driver.readReports('web');
    const booted = reports.find((r) => r.kind === 'booted');
    assert.ok(booted, 'the booted unit reported over the control channel');
    assert.deepEqual((booted.body as { host: string; failedUnits: string[] }).host, 'web');
    assert.deepEqual((booted.body as { failedUnits: string[] }).failedUnits, [], 'no unit failed');
    await bed.driver.acknowledgeReport('web', booted.id);
    assert.equal((await bed.driver.readReports('web')).length, 0);
    console.log(`# create+boot until nginx answered: ${bootMs.toFixed(0)} ms`);
  });

  test('limits of the spec read back from the LC cgroup, from the host and from inside', async () => {
    const usage = await bed.driver.usage('web');
    assert.equal(usage.memoryLimitBytes, 256 * 1024 * 1024);
    assert.equal(usage.cpuQuotaPercent, 50);
    assert.equal(usage.cpus, '0');
    assert.ok(usage.pids > 1 && usage.pids < 100, `${usage.pids} processes`);
    const inside = await bed.driver.exec('web', [
      'sh',
      '-c',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max',
    ]);
    assert.deepEqual(inside.stdout.trim().split('\n'), [String(256 * 1024 * 1024), '4096']);
    // The write limit of the block-I/O controller, set and lifted on the pool's device.
    const loop = (
      await exec(['findmnt', '-no', 'SOURCE', getPool(bed.t.app.db, 'main').mountpoint])
    ).stdout.trim();
    await bed.driver.setWriteLimit('web', loop, 1024 * 1024);
    const limit = await exec([
      'lxc-cgroup',
      '-P',
      path.join(bed.t.stateDir, 'lxc'),
      '-n',
      bed.driver.containerName('web'),
      'blkio.throttle.write_bps_device',
    ]);
    assert.match(limit.stdout, / 1048576$/m);
    await bed.driver.setWriteLimit('web', loop, null);
  });

  test('files written by the manager land in the LC owned by its root; the app disk is mounted', async () => {
    await bed.driver.writeFile(web, '/srv/app/hello.txt', 'from the manager\n');
    await bed.driver.writeFile(web, '/etc/understudy-test', 'system disk\n');
    const inside = await bed.driver.exec('web', [
      'sh',
      '-c',
      'cat /srv/app/hello.txt /etc/understudy-test; stat -c %u:%g /srv/app/hello.txt; echo written-inside > /srv/app/inside.txt',
    ]);
    assert.deepEqual(inside.stdout.trim().split('\n'), ['from the manager', 'system disk', '0:0']);
    assert.equal((await bed.driver.readFile(web, '/srv/app/inside.txt')).toString(), 'written-inside\n');
  });

  test('freeze stops every process (nginx does not answer), thaw resumes them', async () => {
    await bed.driver.freeze('web');
    const frozen = await bed.client.get(url);
    assert.equal(frozen.status, 0, 'no answer while frozen');
    await bed.driver.thaw('web');
    assert.equal((await bed.client.get(url)).status, 200);
  });

  test('a NIC added at run time works and survives a reboot from inside; the LC comes back with nginx', async () => {
    const extra = {
      name: 'eth1',
      bridge: bed.t.host.network.bridge,
      mac: '02:75:73:ee:0b:02',
      addresses: [`${bed.t.prefix}.11/24`],
    };
    await bed.driver.addNic(web, extra);
    assert.equal((await bed.client.get(`http://${bed.t.prefix}.11/`)).status, 200);
    await bed.driver.exec('web', ['systemctl', 'reboot'], { okCodes: [0, 1, 255] });
    const rebooted = await waitFor(
      async () => {
        const s = await bed.driver.status('web');
        return s.reboots === 1 && s.state === 'running' ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    assert.equal(rebooted, true, 'the LC rebooted itself and came back');
    assert.ok(await nginxAnswers());
    assert.equal((await bed.client.get(`http://${bed.t.prefix}.11/`)).status, 200, 'the added NIC came back');
    const link = await bed.driver.netExec('web', ['ip', '-br', 'link', 'show', 'eth1']);
    assert.match(link.stdout, /02:75:73:ee:0b:02/);
    await bed.driver.removeNic({ ...web, nics: [...web.nics, extra] }, 'eth1');
    assert.equal((await bed.client.get(`http://${bed.t.prefix}.11/`)).status, 0);
  });

  test('a NIC moved to another LC keeps its MAC and address, takes the traffic, and stays after a reboot', async () => {
    const peer = bed.spec('peer', 13);
    await bed.driver.create(peer);
    await bed.driver.start(peer);
    await bed.driver.waitUntilUp('peer', { timeoutMs: 60_000 });
    const page = '/var/www/html/index.nginx-debian.html';
    await bed.driver.writeFile(web, page, 'served by web\n');
    await bed.driver.writeFile(peer, page, 'served by peer\n');
    const nic = {
      name: 'eth1',
      bridge: bed.t.host.network.bridge,
      mac: '02:75:73:ee:0c:03',
      addresses: [`${bed.t.prefix}.12/24`],
    };
    const moving = `http://${bed.t.prefix}.12/`;
    await bed.driver.addNic(web, nic);
    assert.equal((await bed.client.get(moving)).body, 'served by web\n');
    const name = await bed.driver.moveNic({ ...web, nics: [...web.nics, nic] }, 'eth1', peer);
    assert.equal(name, 'eth1');
    assert.equal((await bed.client.get(moving)).body, 'served by peer\n');
    const link = await bed.driver.netExec('peer', ['ip', '-br', 'addr', 'show', 'eth1']);
    assert.match(link.stdout, new RegExp(`${bed.t.prefix}\\.12/24`));
    assert.match(
      (await bed.driver.netExec('peer', ['ip', '-br', 'link', 'show', 'eth1'])).stdout,
      /02:75:73:ee:0c:03/,
    );
    const webLinks = await bed.driver.netExec('web', ['ip', '-br', 'link']);
    assert.doesNotMatch(webLinks.stdout, /02:75:73:ee:0c:03/, 'gone from web');
    await bed.driver.reboot('peer');
    await bed.driver.waitUntilUp('peer', { timeoutMs: 60_000 });
    assert.ok(
      await waitFor(
        async () => ((await bed.client.get(moving)).body === 'served by peer\n' ? true : undefined),
        {
          timeoutMs: 20_000,
          intervalMs: 100,
        },
      ),
      'the moved NIC is plugged again after the reboot',
    );
    await bed.driver.stop('peer');
    await bed.driver.destroy({ ...peer, nics: [...peer.nics, nic] });
  });

  test('an LC whose init is killed is reported crashed, and starts again', async () => {
    const { initPid } = await bed.driver.status('web');
    assert.ok(initPid);
    process.kill(initPid, 'SIGKILL');
    const crashed = await waitFor(
      async () => ((await bed.driver.status('web')).state === 'crashed' ? true : undefined),
      {
        timeoutMs: 20_000,
        intervalMs: 50,
      },
    );
    assert.equal(crashed, true, `state: ${(await bed.driver.status('web')).state}`);
    await bed.driver.start(web);
    await bed.driver.waitUntilUp('web', { timeoutMs: 60_000 });
    assert.ok(await nginxAnswers());
  });

  test('stop is a clean systemd shutdown; destroy leaves nothing behind', async () => {
    const stopped = await bed.driver.stop('web', { timeoutMs: 20_000 });
    assert.equal(stopped.outcome, 'clean');
    assert.equal((await bed.driver.status('web')).state, 'stopped');
    assert.equal((await bed.client.get(url)).status, 0);
    const cgroupName = `lxc.payload.${bed.driver.containerName('web')}`;
    await bed.driver.destroy(web);
    assert.equal(fs.existsSync(bed.driver.lcDir('web')), false, 'LXC directory removed');
    const lcs = path.join(getPool(bed.t.app.db, 'main').mountpoint, 'lcs', 'web');
    assert.equal(fs.existsSync(lcs), false, 'disks removed');
    assert.equal(fs.existsSync(`/sys/class/net/${bed.driver.hostNicName(web.nics[0]?.mac ?? '')}`), false);
    assert.equal(fs.existsSync(`/sys/fs/cgroup/memory/${cgroupName}`), false, 'cgroup removed');
    const leases = fs.existsSync('/var/lib/understudy-idmap')
      ? fs.readdirSync('/var/lib/understudy-idmap')
      : [];
    const owners = leases.map((f) => fs.readFileSync(path.join('/var/lib/understudy-idmap', f), 'utf8'));
    assert.ok(!owners.includes(bed.driver.lcDir('web')), 'idmap range released');
    assert.equal(
      fs.existsSync('/var/lib/lxc/' + bed.driver.containerName('web')),
      false,
      'nothing in /var/lib/lxc',
    );
  });
});
