import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serviceFromFlags, undrainOf, validateServices } from '../../../src/inventory/index.ts';

test('a systemd service from YAML gets its defaults; signal names lose their SIG prefix', () => {
  const [nginx] = validateServices([
    { name: 'web', unit: 'nginx.service', ports: [80], drain: { kind: 'signal', signal: 'SIGQUIT' } },
  ]);
  assert.deepEqual(nginx, {
    name: 'web',
    unit: 'nginx.service',
    ports: [80],
    health: { kind: 'tcp' },
    drain: { kind: 'signal', signal: 'QUIT' },
    hold: { kind: 'signal' },
    data: [],
    cut: 'none',
  });
  assert.deepEqual(undrainOf(nginx!), { kind: 'none' });
  assert.deepEqual(undrainOf({ ...nginx!, drain: { kind: 'stop' } }), { kind: 'start' });
});

test('invalid definitions are refused naming the field and what is accepted', () => {
  const refused = (input: unknown, pattern: RegExp): void =>
    assert.throws(
      () => validateServices([input], 'lcs[0].services'),
      (e: Error & { code?: string }) => e.code === 'SERVICE_INVALID' && pattern.test(e.message),
    );
  refused(
    { name: 'web', ports: [80] },
    /lcs\[0\]\.services\[0\]: give exactly one of unit \(systemd\) or pidFile/,
  );
  refused({ name: 'web', unit: 'nginx.service', pidFile: '/run/x.pid', ports: [80] }, /exactly one/);
  refused({ name: 'web', unit: 'nginx', ports: [80] }, /services\[0\]\.unit: a systemd unit name/);
  refused({ name: 'web', unit: 'nginx.service', ports: [] }, /ports: at least one port/);
  refused({ name: 'web', unit: 'nginx.service', ports: [70000] }, /ports\[0\]/);
  refused({ name: 'web', unit: 'nginx.service', ports: [80], drain: { kind: 'kill' } }, /drain/);
  refused({ name: 'web', unit: 'nginx.service', ports: [80], data: ['srv/../etc'] }, /data\[0\]/);
  refused({ name: 'web', unit: 'nginx.service', ports: [80], health: { kind: 'http', path: 'x' } }, /path/);
  refused({ name: 'web', unit: 'nginx.service', ports: [80], colour: 'red' }, /colour|unrecognized/i);
  assert.throws(
    () =>
      validateServices([
        { name: 'a', unit: 'a.service', ports: [1] },
        { name: 'a', unit: 'b.service', ports: [2] },
      ]),
    /"a" is repeated/,
  );
});

test('flags make the same definition as YAML', () => {
  assert.equal(serviceFromFlags({}), undefined);
  assert.deepEqual(
    serviceFromFlags({
      unit: 'nginx.service',
      port: ['80', '443'],
      health: 'http:/:200',
      drain: 'reload',
      hold: 'command:/bin/true pause;/bin/true resume',
      data: ['/srv/app'],
    }),
    {
      name: 'nginx',
      unit: 'nginx.service',
      ports: [80, 443],
      health: { kind: 'http', path: '/', status: 200 },
      drain: { kind: 'reload' },
      hold: { kind: 'command', pause: ['/bin/true', 'pause'], resume: ['/bin/true', 'resume'] },
      data: ['/srv/app'],
      cut: 'none',
    },
  );
  assert.deepEqual(
    serviceFromFlags({ pidFile: '/run/demo.pid', drain: 'signal:USR1', health: 'tcp' })?.drain,
    {
      kind: 'signal',
      signal: 'USR1',
    },
  );
  assert.deepEqual(
    serviceFromFlags({ unit: 'x.service', health: 'command:/usr/bin/check --quick' })?.health,
    {
      kind: 'command',
      argv: ['/usr/bin/check', '--quick'],
    },
  );
});
