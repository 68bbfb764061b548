/**
 * Logical computers on real namespaces: boot, reach from a client on the bridge, limits in force,
 * reboot from inside, NIC moved with traffic following, manager restart while LCs run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec, sleep } from '../../../src/core/index.ts';
import { getLc, moveNicRecord } from '../../../src/inventory/index.ts';
import { NamespaceDriver } from '../../../src/drivers/index.ts';
import { createClient, createTestHost, type TestClient, type TestHost } from '../../helpers/host-fixture.ts';

describe('logical computers on the namespace driver', () => {
  let t: TestHost;
  let client: TestClient;

  before(async () => {
    t = await createTestHost();
    client = await createClient(t);
    await t.lc({
      name: 'lc1',
      addresses: [`${t.prefix}.10`],
      cpus: '0',
      cpuSharePercent: 50,
      memoryMb: 128,
      role: 'active',
    });
    await t.lc({
      name: 'lc2',
      addresses: [`${t.prefix}.11`],
      cpus: '1',
      cpuSharePercent: 100,
      memoryMb: 160,
    });
  });
  after(async () => {
    await client?.dispose();
    await t?.dispose();
  });

  test('two LCs boot their own init and answer a client on the bridge', async () => {
    for (const [name, ip] of [
      ['lc1', `${t.prefix}.10`],
      ['lc2', `${t.prefix}.11`],
    ] as const) {
      const status = await t.host.driver.status(name);
      assert.equal(status.state, 'running');
      const reply = await client.get(`http://${ip}/version`);
      assert.equal(reply.status, 200);
      assert.equal(reply.servedBy, name);
      // PID 1 inside is the image's own init, and the LC has its own hostname.
      const ps = await t.host.driver.exec(name, ['cat', '/proc/1/cmdline']);
      assert.match(ps.stdout, /^init/);
      assert.equal((await t.host.driver.exec(name, ['hostname'])).stdout.trim(), name);
    }
  });

  test('each LC has its own root filesystem, PID and network namespace', async () => {
    await t.host.driver.exec('lc1', ['sh', '-c', 'echo only-in-lc1 > /root/marker']);
    const inLc2 = await t.host.driver.exec('lc2', ['cat', '/root/marker'], { okCodes: [0, 1] });
    assert.equal(inLc2.exitCode, 1, 'a file written in lc1 must not appear in lc2');
    assert.ok(!fs.existsSync('/root/marker') || fs.readFileSync('/root/marker', 'utf8') !== 'only-in-lc1\n');
    const pids = (await t.host.driver.exec('lc1', ['ps', '-o', 'pid'])).stdout
      .trim()
      .split('\n')
      .slice(1)
      .map(Number);
    assert.ok(pids.length < 10, `lc1 sees only its own processes, saw ${pids.length}`);
    const links = (await t.host.driver.exec('lc1', ['ip', '-o', 'link'])).stdout;
    assert.match(links, /eth0/);
    assert.doesNotMatch(links, new RegExp(t.host.network.bridge));
  });

  test('CPU and memory limits are in force; a memory hog is killed inside the LC, not on the host', async () => {
    const usage = await t.host.driver.usage('lc1');
    assert.equal(usage.memoryLimitBytes, 128 * 1024 * 1024);
    assert.equal(usage.cpuQuotaPercent, 50);
    assert.equal(usage.cpus, '0');
    const before = usage.oomKills;
    const hog = await t.host.driver
      .exec('lc1', ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=300M', 'count=1'])
      .then(
        () => 'survived',
        (error: Error) => error.message,
      );
    assert.match(hog, /SIGKILL/);
    assert.ok(
      (await t.host.driver.usage('lc1')).oomKills > before,
      'the kernel killed it for the LC memory limit',
    );
    assert.equal((await t.host.driver.status('lc1')).state, 'running', 'the LC itself survives');
    assert.equal((await client.get(`http://${t.prefix}.10/health`)).status, 200);
  });

  test('a CPU-bound loop inside an LC with a 50% share is throttled by its quota', async () => {
    // busybox timeout ends the loop with SIGTERM, which our exec reports as a failure: expected here.
    await t.host.driver
      .exec('lc1', ['timeout', '1', 'sh', '-c', 'while :; do :; done'])
      .catch(() => undefined);
    const cpuacct = fs.readFileSync(
      `/sys/fs/cgroup/cpu/understudy-${t.host.network.tag}-lc1/cpu.stat`,
      'utf8',
    );
    const throttled = Number(/nr_throttled (\d+)/.exec(cpuacct)?.[1] ?? 0);
    assert.ok(throttled > 0, `the CPU quota throttled the loop (nr_throttled=${throttled})`);
  });

  test('a reboot asked from inside the LC is detected and the LC comes back', async () => {
    const before = await t.host.driver.status('lc2');
    await t.host.driver.exec('lc2', ['reboot']);
    for (let i = 0; i < 300 && (await t.host.driver.status('lc2')).reboots === before.reboots; i++)
      await sleep(50);
    await t.host.driver.waitUntilUp('lc2', { timeoutMs: 30_000 });
    const afterStatus = await t.host.driver.status('lc2');
    assert.equal(afterStatus.reboots, before.reboots + 1);
    assert.notEqual(afterStatus.initPid, before.initPid);
    assert.equal((await client.get(`http://${t.prefix}.11/version`)).servedBy, 'lc2');
  });

  test('a NIC moved from one LC to another takes its address and traffic with it', async () => {
    const lc1 = getLc(t.app.db, 'lc1');
    const lc2 = getLc(t.app.db, 'lc2');
    const newName = await t.host.driver.moveNic(lc1, 'eth0', lc2);
    moveNicRecord(t.app.db, 'lc1', 'eth0', 'lc2', newName);
    assert.notEqual(newName, 'eth0', 'lc2 already has an eth0, so the moved NIC is renamed');
    await t.host.driver.netExec('lc2', ['arping', '-c', '1', '-A', '-I', newName, `${t.prefix}.10`], {
      okCodes: [0, 1],
    });
    const reply = await client.get(`http://${t.prefix}.10/version`);
    assert.equal(reply.status, 200);
    assert.equal(reply.servedBy, 'lc2', 'the old address of lc1 is now answered by lc2');
    const mac = (
      await t.host.driver.netExec('lc2', ['cat', `/sys/class/net/${newName}/address`])
    ).stdout.trim();
    assert.equal(mac, lc1.nics[0]?.mac, 'the NIC kept its MAC');
    // Move it back so the resource table and the devices agree for the other tests.
    const back = await t.host.driver.moveNic(getLc(t.app.db, 'lc2'), newName, getLc(t.app.db, 'lc1'));
    moveNicRecord(t.app.db, 'lc2', newName, 'lc1', back);
    assert.equal(back, 'eth0');
    await t.host.driver.netExec('lc1', ['arping', '-c', '1', '-A', '-I', 'eth0', `${t.prefix}.10`], {
      okCodes: [0, 1],
    });
    assert.equal((await client.get(`http://${t.prefix}.10/version`)).servedBy, 'lc1');
  });

  test('the control channel carries reports from scripts inside the LC to the manager', async () => {
    await t.host.driver.exec('lc2', [
      'understudy-report',
      'patch-result',
      '{"patches":[{"name":"p1","result":"ok"}]}',
    ]);
    const reports = (await t.host.driver.readReports('lc2')).filter((r) => r.kind === 'patch-result');
    assert.equal(reports.length, 1);
    assert.deepEqual(reports[0]?.body, { patches: [{ name: 'p1', result: 'ok' }] });
    await t.host.driver.acknowledgeReport('lc2', reports[0]?.id ?? '');
    assert.equal((await t.host.driver.readReports('lc2')).filter((r) => r.kind === 'patch-result').length, 0);
  });

  test('files can be written into and read from an LC, never outside it', async () => {
    const lc1 = getLc(t.app.db, 'lc1');
    await t.host.driver.writeFile(lc1, '/etc/understudy-test', 'hello\n');
    assert.equal((await t.host.driver.exec('lc1', ['cat', '/etc/understudy-test'])).stdout, 'hello\n');
    await t.host.driver.exec('lc1', ['ln', '-sf', '/etc', '/tmp/escape']);
    await t.host.driver.writeFile(lc1, '/tmp/escape/understudy-escape', 'x');
    assert.ok(
      !fs.existsSync('/etc/understudy-escape'),
      'an absolute symlink inside the LC resolves inside the LC',
    );
    assert.equal((await t.host.driver.readFile(lc1, '/etc/understudy-escape')).toString(), 'x');
    await t.host.driver.writeFile(lc1, '/srv/data/from-manager', 'on the app disk');
    assert.equal(
      (await t.host.driver.exec('lc1', ['cat', '/srv/data/from-manager'])).stdout,
      'on the app disk',
    );
  });

  test('LCs outlive the manager: a new manager process re-attaches and reports them exactly', async () => {
    // A manager process starts an LC and is killed while it waits; a later one finds the LC running.
    await t.lc({ name: 'lc3', addresses: [`${t.prefix}.12`] }, { start: false });
    const starter = exec(
      ['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', t.stateDir, 'lc', 'start', 'lc3'],
      { cwd: process.cwd(), okCodes: [0, 137], timeoutMs: 60_000 },
    );
    // Kill it as soon as it has launched the LC, while it waits for the LC to boot.
    const supervisorPid = path.join(t.app.paths.lcsRuntime, 'lc3', 'supervisor.pid');
    for (let i = 0; i < 600 && !fs.existsSync(supervisorPid); i++) await sleep(50);
    const { trackedChildren } = await import('../../../src/core/index.ts');
    for (const child of trackedChildren()) if (child.spawnargs.includes('lc3')) child.kill('SIGKILL');
    await starter.catch(() => undefined);
    const fresh = new NamespaceDriver({
      tag: t.host.network.tag,
      runDir: t.app.paths.lcsRuntime,
      poolPath: () => '',
      imagePath: () => '',
      diskPath: () => '',
    });
    await fresh.waitUntilUp('lc3', { timeoutMs: 30_000 });
    assert.equal((await fresh.status('lc3')).state, 'running');
    assert.equal((await client.get(`http://${t.prefix}.12/version`)).servedBy, 'lc3');
    const list = JSON.parse((await t.cli(['--json', 'lc', 'list'])).stdout) as {
      name: string;
      status: { state: string };
    }[];
    assert.deepEqual(list.map((l) => [l.name, l.status.state]).sort(), [
      ['lc1', 'running'],
      ['lc2', 'running'],
      ['lc3', 'running'],
    ]);
    const stop = JSON.parse((await t.cli(['--json', 'lc', 'stop', 'lc3'])).stdout) as { outcome: string };
    assert.equal(stop.outcome, 'clean');
    assert.equal((await fresh.status('lc3')).state, 'stopped');
  });

  test('an LC whose init is killed is reported crashed, and can be started again', async () => {
    const status = await t.host.driver.status('lc2');
    assert.ok(status.initPid);
    process.kill(status.initPid, 'SIGKILL');
    let state = '';
    for (let i = 0; i < 100 && state !== 'crashed'; i++) {
      await sleep(50);
      state = (await t.host.driver.status('lc2')).state;
    }
    assert.equal(state, 'crashed');
    await t.host.driver.start(getLc(t.app.db, 'lc2'));
    await t.host.driver.waitUntilUp('lc2');
    // The app disk kept the data across the crash.
    const reply = await client.get(`http://${t.prefix}.11/health`);
    assert.equal(reply.status, 200);
  });

  test('stop is orderly: the service shuts down through its stop script', async () => {
    await exec([
      'ip',
      'netns',
      'exec',
      client.netns,
      'curl',
      '-s',
      '-X',
      'PUT',
      '--data',
      'kept',
      `http://${t.prefix}.11/kv/k1`,
    ]);
    const result = await t.host.driver.stop('lc2');
    assert.equal(result.outcome, 'clean');
    const log = fs.readFileSync((await t.host.driver.status('lc2')).consoleLog, 'utf8');
    assert.match(log, /rcK: stopping lc2/);
    await t.host.driver.start(getLc(t.app.db, 'lc2'));
    await t.host.driver.waitUntilUp('lc2');
    assert.equal((await client.get(`http://${t.prefix}.11/kv/k1`)).body, 'kept');
  });
});
