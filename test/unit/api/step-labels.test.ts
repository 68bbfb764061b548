// The console names every step of a patch run: the seed's steps by their number, the watch after the
// switch, and one copy step per data disk (`copy-<disk>`) with the disk's name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepLabel } from '../../../src/api/index.ts';

test('the seed steps keep their numbered labels', () => {
  assert.equal(stepLabel('copy-system'), '703 copy the system disk');
  assert.equal(stepLabel('copy-app'), '704 copy the application disk');
  assert.equal(stepLabel('check-standby'), '709 check the result');
});

test('the watch after the switch has a label', () => {
  assert.equal(stepLabel('watch'), 'watch the patched service');
});

test('a copy step of an extra data disk gets the copy label with its disk name', () => {
  assert.equal(stepLabel('copy-logs'), '704 copy the data disk logs');
  assert.equal(stepLabel('copy-db-2'), '704 copy the data disk db-2');
});

test('an unknown step keeps its name', () => {
  assert.equal(stepLabel('something-new'), 'something-new');
  assert.equal(stepLabel('copy-'), 'copy-');
});
