import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePatchReport } from '../../../src/run/index.ts';

test('the report of a deb transaction: per package versions and kept conffiles, and what needs a restart', () => {
  const report = parsePatchReport(
    {
      patches: [
        {
          name: 'nginx-common',
          result: 'ok',
          exitCode: 0,
          appliedAt: '2026-12-03T22:00:00Z',
          package: 'nginx-common',
          oldVersion: '1.22.1-9+deb12u9',
          newVersion: '1.22.1-9+deb12u11',
          intendedVersion: '1.22.1-9+deb12u11',
          tool: 'apt-get',
          conffilesKept: ['/etc/nginx/nginx.conf'],
        },
        { name: 'motd', result: 'failed', exitCode: 1, appliedAt: '' },
      ],
      restart: { processes: [{ pid: 1, command: 'systemd' }, { bad: true }], rebootRequired: true },
    },
    ['nginx-common', 'motd'],
  );
  assert.deepEqual(report.entries[0]?.deb, {
    package: 'nginx-common',
    oldVersion: '1.22.1-9+deb12u9',
    newVersion: '1.22.1-9+deb12u11',
    intendedVersion: '1.22.1-9+deb12u11',
    tool: 'apt-get',
    conffilesKept: ['/etc/nginx/nginx.conf'],
  });
  assert.equal(report.entries[1]?.deb, undefined);
  assert.deepEqual(report.restart, { processes: [{ pid: 1, command: 'systemd' }], rebootRequired: true });
});

test('a bare list is still a report; a missing patch or a malformed entry is RUN_REPORT_INVALID', () => {
  assert.equal(parsePatchReport([{ name: 'a', result: 'ok', exitCode: 0 }], ['a']).entries.length, 1);
  assert.throws(() => parsePatchReport({ patches: [] }, ['a']), /does not mention a/);
  assert.throws(() => parsePatchReport({ patches: [{ name: 'a', result: 'maybe' }] }, ['a']), /malformed/);
  assert.throws(() => parsePatchReport('nope', ['a']), /not a list/);
});
