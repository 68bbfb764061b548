/**
 * `--follow` on the CLI's run and switch, on real LCs: one JSON object per event (steps with their
 * durations, copy progress in bytes, switch phases) and then the result; the same events are in the
 * store's event log that `serve` streams.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventLog } from '../../../src/events/index.ts';
import { createRunFixture, type RunFixture } from '../run/run-fixture.ts';

const lines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('--follow', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
  });
  after(async () => f?.dispose());

  test('run --follow --json, then switch --follow --json: events as they happen, service never fails', async () => {
    await f.addVersionPatch();
    const load = await f.load(150);
    const run = await f.t.cli(['--json', 'run', 'lc1', '--skip-scan', '--follow']);
    const events = lines(run.stdout);
    const result = events.pop() as { result: { id: string; state: string; steps: { name: string }[] } };
    assert.equal(result.result.state, 'switched');
    const steps = events.filter((e) => e.state === 'done').map((e) => e.step);
    assert.deepEqual(
      steps,
      result.result.steps.map((s) => s.name),
      'every step ended, in order',
    );
    assert.ok(events.every((e) => e.state !== 'done' || typeof e.durationMs === 'number'));
    const copy = events.find((e) => e.step === 'copy-system' && e.state === 'note') as
      { progress: { bytesDone: number; phase: string } } | undefined;
    assert.ok(copy && copy.progress.bytesDone >= 0 && copy.progress.phase, 'copy progress in bytes');
    assert.ok(
      events.some(
        (e) => e.step === 'switch' && e.state === 'note' && /lc2-takes-address done/.test(String(e.message)),
      ),
      'switch phases',
    );

    const back = await f.t.cli([
      '--json',
      'switch',
      'lc2',
      'lc1',
      '--method',
      'swap-address',
      '--stateful',
      '--follow',
    ]);
    const phases = lines(back.stdout);
    const switched = phases.pop() as { result: { outcome: string } };
    assert.equal(switched.result.outcome, 'switched');
    assert.ok(phases.length >= 3, back.stdout);
    assert.ok(phases.every((p) => String(p.step).startsWith('switch ') && typeof p.durationMs === 'number'));
    const report = await load.stop();
    assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));

    // The same events are in the store's event log, as serve's /v1/events streams them.
    const log = new EventLog(f.t.app.db).after(0, { limit: 10_000 });
    const ofRun = log.filter((e) => e.runId === result.result.id);
    assert.deepEqual(
      ofRun.filter((e) => e.type === 'run.step' && e.data.state === 'done').map((e) => e.data.step),
      steps,
    );
    assert.equal(ofRun.at(-1)?.type, 'run.state');
    assert.equal(ofRun.at(-1)?.data.state, 'switched');
    assert.deepEqual(
      log.filter((e) => e.type === 'switch.phase').map((e) => e.data.phase),
      phases.map((p) => String(p.step).replace('switch ', '')),
    );
  });
});
