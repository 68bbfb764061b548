/**
 * Crash safety on real LCs: the manager (`understudy run lc1` in its own process) is killed with
 * SIGKILL at a crash point; a new manager resumes the run; the service answers every request
 * throughout and ends patched, with its data; then the run is rolled back for the next point. The
 * points are split over several test files (each within the per-file timeout), each with its own
 * host fixture.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnProcess } from '../../../src/core/index.ts';
import { listRuns, resumeRun, rollbackRun } from '../../../src/run/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

export interface CrashPoint {
  /** `<step>:<before|after|during>` or `switch/<switch step>:after` (see src/run/crash-point.ts). */
  point: string;
  /** Extra arguments of `understudy run` (e.g. a watch). */
  args?: string[];
}

/** One describe block: a fixture, and one test per crash point, in order. */
export function crashSuite(title: string, points: readonly (string | CrashPoint)[]): void {
  describe(title, () => {
    let f: RunFixture;
    let patch: string;
    before(async () => {
      f = await createRunFixture();
      patch = await f.addVersionPatch();
    });
    after(async () => f?.dispose());

    for (const entry of points) {
      const { point, args = [] } = typeof entry === 'string' ? { point: entry } : entry;
      test(`killed at ${point}${args.length ? ` (${args.join(' ')})` : ''}: the run resumes and the service never fails a request`, async () => {
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
            ...args,
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
        assert.equal(
          report.summary.failed,
          0,
          `failed requests: ${JSON.stringify(report.summary.byOutcome)}`,
        );
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
}
