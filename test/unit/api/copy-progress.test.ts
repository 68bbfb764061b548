// A disk copy's progress on the event stream: at most one event per 250 ms, but the last event of
// every phase and the `done` always, each with the copy's job id and what is copied where.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyProgressRecorder } from '../../../src/api/index.ts';
import type { NewEvent } from '../../../src/events/index.ts';
import type { CopyPhase, CopyProgress } from '../../../src/disk-copy/index.ts';

const at = (phase: CopyPhase, bytesDone: number, pass = 0): CopyProgress => ({
  jobId: 'j1',
  phase,
  pass,
  bytesDone,
  bytesTotal: phase === 'full' ? 100 : null,
  bytesPerSecond: 10,
  elapsedMs: 0,
});

void test('throttled within a phase; the end of each phase and the done are kept', () => {
  const appended: NewEvent[] = [];
  let now = 1000;
  const record = copyProgressRecorder(
    { append: (e) => (appended.push(e), { ...e, id: appended.length, at: '', runId: null, lc: null }) },
    { from: 'web', disk: 'app', to: 'spare' },
    () => now,
  );
  record(at('full', 0)); // written: the first
  now += 100;
  record(at('full', 40)); // within 250 ms: dropped
  now += 100;
  record(at('full', 100)); // dropped for now, written when the phase ends
  now += 10;
  record(at('final', 0, 1)); // the phase changed: full/100 then final/0
  now += 10;
  record(at('done', 100, 1));
  assert.deepEqual(
    appended.map(
      (e) => `${(e.data.progress as CopyProgress).phase}/${(e.data.progress as CopyProgress).bytesDone}`,
    ),
    ['full/0', 'full/100', 'final/0', 'done/100'],
  );
  assert.ok(appended.every((e) => e.type === 'copy.progress'));
  assert.deepEqual(
    { ...appended[0]?.data, progress: undefined },
    { jobId: 'j1', from: 'web', disk: 'app', to: 'spare', toDisk: 'app', progress: undefined },
  );
});
