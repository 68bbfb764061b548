/**
 * The namespace driver is retired for operators: without the test suite's gate
 * (UNDERSTUDY_TEST_DRIVERS=namespace) `lc create`, `apply`, `POST /v1/lcs` and `demo` refuse it with an
 * error that says what is wrong and what to do, and leave nothing behind; a namespace LC made earlier
 * can still be listed, stopped and destroyed (and is refused a new start).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listLcs } from '../../../src/inventory/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';
import { startServe } from '../api/serve-fixture.ts';

/** The environment of an operator's process: the test suite's gate unset. */
const operator = { UNDERSTUDY_TEST_DRIVERS: '' };
const retired = /the namespace driver is retired for operators, it is not isolated like LXC/;

describe('the namespace driver, retired for operators', () => {
  let t: TestHost;
  before(async () => {
    t = await createTestHost();
    await t.lc({ name: 'old', addresses: [`${t.prefix}.10`] });
  });
  after(async () => t?.dispose());

  const names = (): string[] => listLcs(t.app.db).map((lc) => lc.name);

  test('lc create --driver namespace is refused, with the way out, and nothing is recorded', async () => {
    const out = await t.cli(['lc', 'create', 'dev', '--driver', 'namespace', '--image', 'busybox'], {
      okCodes: [1],
      env: operator,
    });
    assert.match(out.stderr, /error: Cannot create "dev" on the namespace driver: /);
    assert.match(out.stderr, retired);
    assert.match(out.stderr, /hint: Use --driver lxc \(the default\)/);
    const json = await t.cli(
      ['--json', 'lc', 'create', 'dev', '--driver', 'namespace', '--image', 'busybox'],
      {
        okCodes: [1],
        env: operator,
      },
    );
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'DRIVER_RETIRED');
    assert.deepEqual(names(), ['old']);
    const help = await t.cli(['lc', 'create', '--help'], { env: operator });
    assert.match(help.stdout.replace(/\s+/g, ' '), /namespace \(retired for operators/);
  });

  test('apply with driver: namespace is refused', async () => {
    const file = path.join(t.stateDir, 'retired.yaml');
    fs.writeFileSync(
      file,
      [
        'host:',
        `  subnet: ${t.subnet}`,
        `  bridge: ${t.host.network.bridge}`,
        'lcs:',
        '  - name: ydev',
        '    image: busybox',
        '    driver: namespace',
        '    disks: { system: 256, app: 0 }',
        '',
      ].join('\n'),
    );
    const out = await t.cli(['apply', file], { okCodes: [1], env: operator });
    assert.match(out.stderr, /Cannot create "ydev" on the namespace driver/);
    assert.match(out.stderr, retired);
    assert.deepEqual(names(), ['old']);
  });

  test('POST /v1/lcs with driver namespace is refused with 400 DRIVER_RETIRED', async () => {
    const serve = await startServe(t.stateDir, [], { env: operator });
    try {
      const res = await serve.api<{ code: string; message: string }>('POST', '/v1/lcs', {
        name: 'adev',
        image: 'busybox',
        driver: 'namespace',
        systemDiskMb: 256,
        appDiskMb: 0,
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.code, 'DRIVER_RETIRED');
      assert.match(res.body.message, retired);
    } finally {
      await serve.stop();
    }
    assert.deepEqual(names(), ['old']);
  });

  test('demo --driver namespace is refused before it sets anything up', async () => {
    const out = await t.cli(['demo', '--driver', 'namespace'], { okCodes: [1], env: operator });
    assert.match(out.stderr, /Cannot create "lc1" on the namespace driver/);
    assert.match(out.stderr, /hint: Use --driver lxc/);
  });

  test('a namespace LC made earlier is listed, stopped and destroyed; a new start is refused', async () => {
    const list = JSON.parse((await t.cli(['--json', 'lc', 'list'], { env: operator })).stdout) as {
      name: string;
      driver: string;
    }[];
    assert.deepEqual(
      list.map((lc) => [lc.name, lc.driver]),
      [['old', 'namespace']],
    );
    await t.cli(['lc', 'stop', 'old'], { env: operator });
    assert.equal((await t.host.driver.status('old')).state, 'stopped');
    const start = await t.cli(['lc', 'start', 'old'], { okCodes: [1], env: operator });
    assert.match(start.stderr, /Cannot start "old" on the namespace driver/);
    assert.match(start.stderr, /hint: Destroy it \(`understudy lc destroy old`\)/);
    assert.equal((await t.host.driver.status('old')).state, 'stopped');
    await t.cli(['lc', 'destroy', 'old'], { env: operator });
    assert.deepEqual(names(), []);
  });
});
