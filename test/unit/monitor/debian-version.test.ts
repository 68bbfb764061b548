import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareDebianVersions } from '../../../src/monitor/index.ts';

void test('Debian version ordering (deb-version(7))', () => {
  const ascending = ['1.0~rc1', '1.0', '1.0-1', '1.0-1+deb12u1', '1.0-2', '1.0a', '1.1', '1.10', '2:0.1'];
  for (let i = 0; i + 1 < ascending.length; i++) {
    const a = ascending[i] as string;
    const b = ascending[i + 1] as string;
    assert.ok(compareDebianVersions(a, b) < 0, `${a} < ${b}`);
    assert.ok(compareDebianVersions(b, a) > 0, `${b} > ${a}`);
  }
  assert.equal(compareDebianVersions('1.01', '1.1'), 0);
  assert.equal(compareDebianVersions('0:1.0-1', '1.0-1'), 0);
  assert.ok(compareDebianVersions('3.0.11-1~deb12u2', '3.0.11-1') < 0);
  assert.ok(compareDebianVersions('3.0.15-1~deb12u1', '3.0.11-1~deb12u2') > 0);
});
