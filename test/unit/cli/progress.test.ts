// The CLI's progress display: a live line with phase, bytes, rate and ETA on a terminal; plain,
// throttled lines otherwise; one JSON object per event with --json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgressDisplay, describeProgress } from '../../../src/cli/index.ts';

const copyNote = (bytesDone: number) => ({
  runId: 'r1',
  step: 'copy-system',
  state: 'note',
  message: 'full pass 0',
  progress: {
    phase: 'full',
    pass: 0,
    bytesDone,
    bytesTotal: 100 * 1024 ** 2,
    bytesPerSecond: 10 * 1024 ** 2,
  },
});

void test('describeProgress: phase, bytes of total, rate and ETA', () => {
  assert.equal(
    describeProgress('copy-system', copyNote(40 * 1024 ** 2).progress),
    'copy-system: full pass 0 40.0 MiB of 100.0 MiB at 10.0 MiB/s ETA 6 s',
  );
  assert.equal(
    describeProgress('copy-app', {
      phase: 'incremental',
      pass: 2,
      bytesDone: 1024 ** 2,
      bytesTotal: null,
      bytesPerSecond: 0,
    }),
    'copy-app: incremental pass 2 1.0 MiB',
  );
});

void test('on a terminal the copy redraws one line; steps print on their own lines', () => {
  let err = '';
  const show = createProgressDisplay({
    json: false,
    tty: true,
    out: () => assert.fail('stdout'),
    err: (t) => (err += t),
  });
  show({ runId: 'r1', step: 'copy-system', state: 'running' });
  show(copyNote(10 * 1024 ** 2));
  show(copyNote(20 * 1024 ** 2));
  show({ runId: 'r1', step: 'copy-system', state: 'done', durationMs: 2500 });
  assert.equal(
    err,
    'running copy-system\n' +
      '\r\x1b[2K        copy-system: full pass 0 10.0 MiB of 100.0 MiB at 10.0 MiB/s ETA 9 s' +
      '\r\x1b[2K        copy-system: full pass 0 20.0 MiB of 100.0 MiB at 10.0 MiB/s ETA 8 s' +
      '\r\x1b[2Kdone    copy-system (2.50 s)\n',
  );
});

void test('without a terminal: plain lines, at most one progress line a second', () => {
  let err = '';
  let clock = 10_000;
  const show = createProgressDisplay({
    json: false,
    tty: false,
    out: () => undefined,
    err: (t) => (err += t),
    now: () => clock,
  });
  show(copyNote(1));
  clock += 200;
  show(copyNote(2));
  clock += 1000;
  show(copyNote(3 * 1024 ** 2));
  assert.equal(err.split('\n').filter(Boolean).length, 2);
  assert.ok(!err.includes('\r') && !err.includes('\x1b'), 'no terminal control codes');
});

void test('--json --follow: one JSON object per event on stdout', () => {
  let out = '';
  const show = createProgressDisplay({
    json: true,
    tty: true,
    out: (t) => (out += t),
    err: () => assert.fail('stderr'),
  });
  show({ runId: 'r1', step: 'scan', state: 'running' });
  show(copyNote(5));
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: string });
  assert.deepEqual(
    lines.map((l) => l.step),
    ['scan', 'copy-system'],
  );
});
