/** The driver an LC gets by default, and how the development driver is described and warned about. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { driverNames } from '../../../src/app/index.ts';
import { defaultDriver, describeDrivers, developmentDriverWarning } from '../../../src/drivers/index.ts';

void test('lxc is the default; namespace is described as a test and development driver with weaker isolation', () => {
  assert.equal(defaultDriver, 'lxc');
  assert.deepEqual(driverNames(), ['lxc', 'namespace']);
  const help = describeDrivers(['namespace', 'lxc']);
  assert.match(help, /^lxc \(the default: an unprivileged LXC system container\) \| namespace \(/);
  assert.match(
    help,
    /namespace \(tests and development only, weaker isolation: the LC's root is the host's root/,
  );
  assert.equal(developmentDriverWarning('web', 'lxc'), undefined);
  assert.match(
    developmentDriverWarning('dev', 'namespace') ?? '',
    /^warning: dev runs on the namespace driver \(tests and development only, weaker isolation/,
  );
});
