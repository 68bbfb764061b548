/**
 * The LXC driver is the default of `lc create` and of the YAML of `apply` (no `--driver`, no `driver:`):
 * the resource table records it and every later command (start, exec, reboot, stop, destroy) reaches
 * the LC through it. The namespace driver only when asked for by name in the project's test suite
 * (UNDERSTUDY_TEST_DRIVERS=namespace), with a warning that it is retired for operators and not isolated
 * like LXC (test/e2e/lc/namespace-retired.test.ts: refused without the gate).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLxcBed, type LxcBed } from './lxc-fixture.ts';

describe('LXC driver from the CLI and the YAML', () => {
  let bed: LxcBed;
  before(async () => {
    bed = await createLxcBed();
  });
  after(async () => bed?.dispose());

  test('lc create without --driver makes an LXC LC; start, exec, reboot, stop and destroy reach it through that driver', async () => {
    const address = `${bed.t.prefix}.80`;
    const created = await bed.t.cli([
      '--json',
      'lc',
      'create',
      'web',
      '--image',
      'debian-nginx',
      '--memory',
      '256',
      '--cpu-share',
      '50',
      '--app-mount',
      '/srv/app',
      '--address',
      address,
      '--start',
    ]);
    const record = JSON.parse(created.stdout) as { driver: string; status: { state: string } };
    assert.equal(record.driver, 'lxc');
    assert.equal(record.status.state, 'running');
    assert.equal((await bed.client.get(`http://${address}/`)).status, 200, 'Debian nginx answers');
    const show = JSON.parse((await bed.t.cli(['--json', 'lc', 'show', 'web'])).stdout) as {
      driver: string;
      usage?: { memoryLimitBytes: number };
    };
    assert.equal(show.driver, 'lxc');
    assert.equal(show.usage?.memoryLimitBytes, 256 * 1024 * 1024);
    const init = await bed.t.cli(['lc', 'exec', 'web', '--', 'cat', '/proc/1/comm']);
    assert.equal(init.stdout.trim(), 'systemd');
    const lxcDir = path.join(bed.t.stateDir, 'lxc');
    assert.ok(
      fs.readdirSync(lxcDir).some((d) => d.endsWith('-web')),
      'an LXC container under the state dir',
    );
    const rebooted = JSON.parse((await bed.t.cli(['--json', 'lc', 'reboot', 'web'])).stdout) as {
      state: string;
      reboots: number;
    };
    assert.deepEqual([rebooted.state, rebooted.reboots], ['running', 1]);
    assert.equal((await bed.client.get(`http://${address}/`)).status, 200);
    await bed.t.cli(['lc', 'stop', 'web']);
    await bed.t.cli(['lc', 'destroy', 'web']);
    assert.ok(!fs.readdirSync(lxcDir).some((d) => d.endsWith('-web')), 'its LXC directory is gone');
  });

  test('the YAML of `apply` without driver: makes an LXC LC; namespace only by name, with a warning; an unknown driver is refused', async () => {
    const file = path.join(bed.t.stateDir, 'host.yaml');
    fs.writeFileSync(
      file,
      [
        'host:',
        `  subnet: ${bed.t.subnet}`,
        `  bridge: ${bed.t.host.network.bridge}`,
        'lcs:',
        '  - name: yweb',
        '    image: debian-nginx',
        '    memory: 256',
        `    addresses: [${bed.t.prefix}.81]`,
        '    start: true',
        '  - name: ydev',
        '    image: debian-nginx',
        '    driver: namespace',
        '    memory: 64',
        '    disks: { system: 256, app: 0 }',
        '',
      ].join('\n'),
    );
    const applied = await bed.t.cli(['apply', file]);
    assert.match(applied.stdout, /lc yweb created/);
    assert.doesNotMatch(applied.stderr, /warning: yweb/);
    assert.match(
      applied.stderr,
      /warning: ydev runs on the namespace driver \(retired for operators, the project's tests only: it is not isolated like LXC/,
    );
    const show = JSON.parse((await bed.t.cli(['--json', 'lc', 'show', 'yweb'])).stdout) as {
      driver: string;
      status: { state: string };
    };
    assert.deepEqual([show.driver, show.status.state], ['lxc', 'running']);
    assert.equal((await bed.client.get(`http://${bed.t.prefix}.81/`)).status, 200);
    await bed.t.cli(['lc', 'destroy', 'yweb', '--force']);
    const dev = JSON.parse((await bed.t.cli(['--json', 'lc', 'show', 'ydev'])).stdout) as { driver: string };
    assert.equal(dev.driver, 'namespace');
    await bed.t.cli(['lc', 'destroy', 'ydev']);
    const byFlag = await bed.t.cli([
      'lc',
      'create',
      'zdev',
      '--driver',
      'namespace',
      '--image',
      'debian-nginx',
      '--memory',
      '64',
      '--system-disk',
      '256',
      '--app-disk',
      '0',
    ]);
    assert.match(byFlag.stderr, /warning: zdev runs on the namespace driver \(retired for operators/);
    await bed.t.cli(['lc', 'destroy', 'zdev']);
    const help = await bed.t.cli(['lc', 'create', '--help']);
    assert.match(
      help.stdout.replace(/\s+/g, ' '),
      /--driver <driver> partitioning driver: lxc \(the default/,
    );
    assert.match(
      help.stdout.replace(/\s+/g, ' '),
      /namespace \(retired for operators, the project's tests only: it is not isolated like LXC/,
    );
    const unknown = await bed.t.cli(['lc', 'create', 'x', '--driver', 'qemu', '--image', 'debian-nginx'], {
      okCodes: [1],
    });
    assert.match(unknown.stderr, /There is no partitioning driver "qemu"/);
    assert.match(unknown.stderr, /lxc, namespace/);
  });
});
