/**
 * A run's record is validated when read back from the store: the facts against the schemas of the
 * steps that write them, each step's output against its own. A record that does not validate fails
 * with RUN_RECORD_INVALID naming the run, the step and the field.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sha256File } from '../../../src/catalogue/index.ts';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { RunJournal, getRun, listRuns, startRun } from '../../../src/run/index.ts';
import { createMemoryRun } from '../../helpers/memory-run.ts';

test('a run read back has typed facts and outputs', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  const read = getRun(f.db, run.id);
  assert.equal(read.facts.standby, 'lc2');
  assert.equal(read.facts.switchResult?.outcome, 'switched');
  assert.deepEqual(
    read.facts.patchResults?.map((p) => [p.name, p.result]),
    [['demo-1.0.1', 'ok']],
  );
  assert.deepEqual(read.steps.find((s) => s.name === 'record-applied')?.output, { applied: ['demo-1.0.1'] });
});

test('a fact of the wrong type: RUN_RECORD_INVALID names the run, the step that writes it and the field', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  const facts = JSON.parse(
    (f.db.prepare('SELECT facts FROM runs WHERE id = ?').get(run.id) as { facts: string }).facts,
  ) as Record<string, unknown>;
  facts.switchResult = { ...(facts.switchResult as object), method: 'teleport' };
  f.db.prepare('UPDATE runs SET facts = ? WHERE id = ?').run(JSON.stringify(facts), run.id);
  assert.throws(
    () => getRun(f.db, run.id),
    (e: unknown) => {
      assert.ok(isUnderstudyError(e, 'RUN_RECORD_INVALID'), String(e));
      assert.match(e.message, new RegExp(`run ${run.id}`));
      assert.match(e.message, /"switchResult\.method" written by step switch/);
      assert.match(e.hint, /Restore the state directory from a backup/);
      assert.equal(e.details.step, 'switch');
      return true;
    },
  );
});

test("a step's output of the wrong shape, or facts that are not JSON, fail the same way", async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  f.db
    .prepare("UPDATE run_steps SET output = ? WHERE run_id = ? AND name = 'reboot-standby'")
    .run(JSON.stringify({ reboots: 'many' }), run.id);
  assert.throws(() => getRun(f.db, run.id), /"output\.reboots" written by step reboot-standby/);
  f.db
    .prepare("UPDATE run_steps SET output = ? WHERE run_id = ? AND name = 'reboot-standby'")
    .run(JSON.stringify({ reboots: 1 }), run.id);
  f.db.prepare('UPDATE runs SET facts = ? WHERE id = ?').run('{"standby": ', run.id);
  assert.throws(
    () => getRun(f.db, run.id),
    (e: unknown) => isUnderstudyError(e, 'RUN_RECORD_INVALID') && /"facts".*not JSON/.test(e.message),
  );
});

test('a step undone before it ended (a cancelled copy) reads back without an output', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  const copy = getRun(f.db, run.id).steps.find((s) => s.name.startsWith('copy-'));
  assert.ok(copy);
  // What the discard of a cancelled run wrote for a copy that never ended: no output.
  new RunJournal(f.db).stepEnded(run.id, copy.seq, 'undone', { durationMs: 0, output: null });
  assert.equal(
    (
      f.db.prepare('SELECT output FROM run_steps WHERE run_id = ? AND seq = ?').get(run.id, copy.seq) as {
        output: string | null;
      }
    ).output,
    null,
  );
  // Records written as JSON null before read back the same.
  f.db.prepare("UPDATE run_steps SET output = 'null' WHERE run_id = ? AND seq = ?").run(run.id, copy.seq);
  assert.equal(getRun(f.db, run.id).steps.find((s) => s.seq === copy.seq)?.output, null);
});

test('a failed run whose steps were undone reads back (an undone step without output is valid)', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  const file = path.join(f.dir, 'broken.src');
  fs.writeFileSync(file, 'fail\n');
  await f.catalogue.registerPatch({
    file,
    name: 'broken',
    categories: ['security'],
    format: 'script',
    sha256: (await sha256File(file)).sha256,
  });
  f.catalogue.markNextRun('broken', 'lc1', true);
  await assert.rejects(
    startRun({ lc: 'lc1', skipScan: true }, f.deps),
    /RUN_PATCH_FAILED|failed on the standby/,
  );
  const [run] = listRuns(f.db);
  assert.equal(run?.state, 'failed');
  assert.deepEqual(
    run?.steps.filter((s) => s.state === 'undone').map((s) => s.name),
    ['copy-system', 'copy-app', 'boot-standby'],
  );
  assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
});
