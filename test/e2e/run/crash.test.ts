/**
 * Crash safety: the manager is killed (SIGKILL) at every step boundary of a patch run, in the middle of
 * the disk copy and in the middle of the switch. A new manager resumes the run; the service answers
 * every request throughout and ends patched, with its data.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnProcess } from '../../../src/core/index.ts';
import { listRuns, resumeRun, rollbackRun } from '../../../src/run/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

const crashPoints = [
  'find-standby:after',
  'scan:after',
  'stop-standby:after',
  'copy-system:during',
  'copy-system:after',
  'copy-app:after',
  'write-patches:after',
  'boot-standby:after',
  'reboot-standby:after',
  'check-standby:after',
  'switch/lc2-takes-address:after',
  'switch/drain:after',
  'switch:after',
  'record-applied:before',
];

describe('the manager is killed during a patch run', () => {
  let f: RunFixture;
  let patch: string;
  before(async () => {
    f = await createRunFixture();
    patch = await f.addVersionPatch();
  });
  after(async () => f?.dispose());

  for (const point of crashPoints) {
    test(`killed at ${point}: the run resumes and the service never fails a request`, async () => {
      f.catalogue.markNextRun(patch, 'lc1', true);
      assert.equal(await f.put(`/kv/mark-${point}`, point), 200);
      const load = await f.load(150);
      const manager = spawnProcess(
        [
          process.execPath,
          '--import',
          'tsx',
          path.join(repoRoot, 'src/cli/entry.ts'),
          '--state-dir',
          f.t.stateDir,
          'run',
          'lc1',
          '--skip-scan',
        ],
        { cwd: repoRoot, env: { UNDERSTUDY_CRASH_AT: point } },
      );
      const ended = await manager.done;
      assert.equal(
        ended.signal,
        'SIGKILL',
        `the manager should have been killed at ${point}: ${ended.stderr.slice(-500)}`,
      );
      const id = listRuns(f.t.app.db)[0]?.id ?? '';
      const resumed = await resumeRun(id, f.deps);
      await new Promise((r) => setTimeout(r, 500));
      const report = await load.stop();
      assert.equal(resumed.state, 'switched', `run ${id}: ${resumed.error ?? ''}`);
      assert.equal(report.summary.failed, 0, `failed requests: ${JSON.stringify(report.summary.byOutcome)}`);
      const now = await f.get(`/kv/mark-${point}`);
      assert.equal(now.servedBy, 'lc2');
      assert.equal(now.version, '1.0.1');
      assert.equal(now.body, point);
      for (const w of report.ackedWrites)
        assert.equal((await f.get(w.path)).body, w.value, `acknowledged write ${w.path} kept`);
      // Back to the start for the next crash point.
      assert.equal((await rollbackRun(id, f.deps)).state, 'rolled-back');
      assert.equal((await f.get('/version')).servedBy, 'lc1');
    });
  }
});
