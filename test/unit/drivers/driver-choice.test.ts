/** The driver an LC gets by default, and the namespace driver's retirement for operators. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { driverNames } from '../../../src/app/index.ts';
import {
  assertDriverUsable,
  defaultDriver,
  describeDrivers,
  isDriverRetired,
  retiredDriverWarning,
} from '../../../src/drivers/index.ts';

void test('lxc is the default; namespace is described as retired for operators, not isolated like LXC', () => {
  assert.equal(defaultDriver, 'lxc');
  assert.deepEqual(driverNames(), ['lxc', 'namespace']);
  const help = describeDrivers(['namespace', 'lxc']);
  assert.match(help, /^lxc \(the default: an unprivileged LXC system container\) \| namespace \(/);
  assert.match(
    help,
    /namespace \(retired for operators, the project's tests only: it is not isolated like LXC/,
  );
  assert.equal(retiredDriverWarning('web', 'lxc'), undefined);
  assert.match(
    retiredDriverWarning('dev', 'namespace') ?? '',
    /^warning: dev runs on the namespace driver \(retired/,
  );
});

void test('the namespace driver is refused without the test-suite gate, with what went wrong and what to do', () => {
  assert.equal(isDriverRetired('namespace', {}), true);
  assert.equal(isDriverRetired('namespace', { UNDERSTUDY_TEST_DRIVERS: '' }), true);
  assert.equal(isDriverRetired('namespace', { UNDERSTUDY_TEST_DRIVERS: 'lxc,other' }), true);
  assert.equal(isDriverRetired('lxc', {}), false, 'lxc never needs the gate');
  assert.throws(
    () => assertDriverUsable({ lc: 'dev', driver: 'namespace', action: 'create' }, {}),
    (e: unknown) =>
      isUnderstudyError(e, 'DRIVER_RETIRED') &&
      /Cannot create "dev" on the namespace driver: the namespace driver is retired for operators, it is not isolated like LXC/.test(
        e.message,
      ) &&
      /--driver lxc \(the default\)/.test(e.hint),
  );
  assert.throws(
    () => assertDriverUsable({ lc: 'old', driver: 'namespace', action: 'start' }, {}),
    (e: unknown) =>
      isUnderstudyError(e, 'DRIVER_RETIRED') &&
      /understudy lc destroy old/.test(e.hint) &&
      /stop, destroy and list/.test(e.hint),
  );
});

void test('with UNDERSTUDY_TEST_DRIVERS=namespace (the test suite) the namespace driver runs', () => {
  const env = { UNDERSTUDY_TEST_DRIVERS: 'namespace' };
  assert.equal(isDriverRetired('namespace', env), false);
  assert.equal(isDriverRetired('namespace', { UNDERSTUDY_TEST_DRIVERS: 'other, namespace' }), false);
  assert.doesNotThrow(() => assertDriverUsable({ lc: 'dev', driver: 'namespace', action: 'create' }, env));
  assert.doesNotThrow(() => assertDriverUsable({ lc: 'web', driver: 'lxc', action: 'start' }, {}));
});
