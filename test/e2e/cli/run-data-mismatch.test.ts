/**
 * A run whose whole-tree check found the data served different from the old LC's at the cut makes
 * the command that prints its result fail (RUN_DATA_MISMATCH, exit 1), through the real CLI in a
 * child process: `run follow` names the differing paths and the way back (`understudy rollback <id>`)
 * on stderr, and with `--json` its output stays one JSON object per line. A run whose check passed, or
 * whose mismatch the rollback left behind, exits 0. `run show` shows the mismatch first and does not
 * fail: it reports, it did not drive the run.
 *
 * The runs are seeded through the run journal (no host needed): the command reads them as it reads
 * any run another process drove.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openApp } from '../../../src/app/index.ts';
import type { ExecResult } from '../../../src/core/index.ts';
import { RunJournal, type RunFacts, type RunState } from '../../../src/run/index.ts';
import { cliIn } from '../../helpers/host-fixture.ts';

const paths = '/srv/data/orders.db, /srv/data/index/0001';
const mismatchDetail = `lc2/app differs from lc1/app at the cut: ${paths}`;

type TreeCheck = NonNullable<RunFacts['treeChecks']>[string];

function check(state: TreeCheck['state'], detail: string, from = 'lc1', to = 'lc2'): TreeCheck {
  return { state, detail, from, to, owner: '1:0:test', at: new Date().toISOString() };
}

/** Records a finished run of `lc` with these tree checks, through the journal as a run writes it. */
function seedRun(stateDir: string, lc: string, state: RunState, treeChecks: RunFacts['treeChecks']): string {
  const app = openApp(stateDir);
  try {
    const journal = new RunJournal(app.db);
    const id = journal.create(
      {
        lc,
        patches: ['demo-1.0.1'],
        method: 'instant',
        skipScan: true,
        bootTimeoutMs: 120_000,
        healthPath: '/',
        port: 80,
        watchMs: 0,
        stateful: true,
      },
      ['switch'],
    );
    journal.setStandby(id, `${lc}-standby`);
    journal.saveFacts(id, { standby: `${lc}-standby`, treeChecks });
    journal.setState(id, state);
    return id;
  } finally {
    app.close();
  }
}

/** stdout of `--json --follow`: every line one JSON object. */
function jsonLines(out: ExecResult): Record<string, unknown>[] {
  const lines = out.stdout.trim().split('\n');
  return lines.map((line, i) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`line ${i + 1} of stdout is not a JSON object: ${line}\n--- stdout:\n${out.stdout}`);
    }
  });
}

interface JsonError {
  code: string;
  message: string;
  hint: string;
  details: { runId: string; state: string; run?: { id: string; state: string } };
}

describe('RUN_DATA_MISMATCH through the CLI', () => {
  let stateDir: string;
  let mismatched: string;
  let passed: string;
  let rolledBack: string;
  let backMismatched: string;
  before(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-mismatch-'));
    mismatched = seedRun(stateDir, 'lc1', 'switched', { switch: check('mismatch', mismatchDetail) });
    passed = seedRun(stateDir, 'lc3', 'switched', {
      switch: check('ok', 'lc2/app equals lc1/app at the cut (42 entries compared)'),
    });
    // The watch found the forward mismatch and rolled the run back; the switch back's check passed:
    // the data served now is LC1's again.
    rolledBack = seedRun(stateDir, 'lc5', 'rolled-back', {
      switch: check('mismatch', mismatchDetail),
      'rollback-switch': check('ok', 'lc1/app equals lc2/app at the cut (42 entries compared)', 'lc2', 'lc1'),
    });
    // Rolled back, and the switch back's check found LC1's data different from LC2's at that cut.
    backMismatched = seedRun(stateDir, 'lc7', 'rolled-back', {
      switch: check('ok', 'lc2/app equals lc1/app at the cut (42 entries compared)'),
      'rollback-switch': check('mismatch', `lc1/app differs from lc2/app at the cut: ${paths}`, 'lc2', 'lc1'),
    });
  });
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  test('run follow of a run with a mismatch: exit 1, the paths and the rollback on stderr', async () => {
    const out = await cliIn(stateDir, ['run', 'follow', mismatched]);
    assert.doesNotMatch(out.stderr, /understudy hit a bug/, out.stderr);
    assert.equal(out.exitCode, 1, `stdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
    // The record is printed first, its first line saying so.
    assert.match(
      out.stdout,
      new RegExp(`^run ${mismatched}: switched — DATA MISMATCH after the switch`, 'm'),
    );
    assert.match(
      out.stderr,
      new RegExp(`^error: Run ${mismatched} is switched, but the data now served differs`, 'm'),
    );
    assert.ok(out.stderr.includes(paths), out.stderr);
    assert.match(out.stderr, /^hint: .*Nothing was rolled back/m);
    assert.ok(out.stderr.includes(`\`understudy rollback ${mismatched}\``), out.stderr);
  });

  test('run follow --json of a run with a mismatch: exit 1, one JSON object per line, the error last', async () => {
    const out = await cliIn(stateDir, ['--json', 'run', 'follow', mismatched]);
    assert.equal(out.exitCode, 1, `stdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
    const lines = jsonLines(out);
    const error = lines.at(-1)?.error as JsonError | undefined;
    assert.ok(error, out.stdout);
    assert.equal(error.code, 'RUN_DATA_MISMATCH');
    assert.ok(error.message.includes(paths), error.message);
    assert.ok(error.hint.includes(`understudy rollback ${mismatched}`), error.hint);
    assert.deepEqual([error.details.runId, error.details.state], [mismatched, 'switched']);
    const result = lines.at(-2)?.result as { id: string; state: string } | undefined;
    assert.deepEqual([result?.id, result?.state], [mismatched, 'switched'], out.stdout);
  });

  test('run follow of a run whose check passed exits 0 (with and without --json)', async () => {
    const out = await cliIn(stateDir, ['run', 'follow', passed]);
    assert.equal(out.exitCode, 0, `stdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
    assert.match(out.stdout, new RegExp(`^run ${passed}: switched$`, 'm'));
    assert.doesNotMatch(out.stderr, /error:|MISMATCH/);
    const json = await cliIn(stateDir, ['--json', 'run', 'follow', passed]);
    assert.equal(json.exitCode, 0, json.stderr);
    const lines = jsonLines(json);
    assert.equal((lines.at(-1)?.result as { id: string } | undefined)?.id, passed, json.stdout);
    assert.ok(
      lines.every((l) => !('error' in l)),
      json.stdout,
    );
  });

  test('a forward mismatch the rollback left behind does not fail: the data served is the old LC’s', async () => {
    const out = await cliIn(stateDir, ['run', 'follow', rolledBack]);
    assert.equal(out.exitCode, 0, `stdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
    assert.match(out.stdout, /verify\.tree after switch: MISMATCH/);
    assert.match(out.stdout, /verify\.tree after rollback-switch: ok/);
  });

  test('a mismatch found by the switch back fails too, without offering a rollback of the rolled-back run', async () => {
    const out = await cliIn(stateDir, ['run', 'follow', backMismatched]);
    assert.equal(out.exitCode, 1, `stdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
    assert.match(out.stdout, new RegExp(`^run ${backMismatched}: rolled-back — DATA MISMATCH`, 'm'));
    assert.match(out.stderr, new RegExp(`^error: Run ${backMismatched} is rolled-back, but .*${paths}`, 'm'));
    assert.match(out.stderr, /^hint: .*the service is on lc7 again/m);
    assert.doesNotMatch(out.stderr, /understudy rollback/);
  });

  test('run show reports the mismatch first and exits 0 (with --json, one JSON document)', async () => {
    const out = await cliIn(stateDir, ['run', 'show', mismatched]);
    assert.equal(out.exitCode, 0, out.stderr);
    assert.match(
      out.stdout.split('\n')[0] ?? '',
      new RegExp(`^run ${mismatched}: switched — DATA MISMATCH after the switch \\(verify\\.tree\\)`),
    );
    assert.ok(out.stdout.includes(`verify.tree after switch: MISMATCH — ${mismatchDetail}`), out.stdout);
    const json = await cliIn(stateDir, ['--json', 'run', 'show', mismatched]);
    assert.equal(json.exitCode, 0, json.stderr);
    const record = JSON.parse(json.stdout) as { id: string; facts: RunFacts };
    assert.equal(record.id, mismatched);
    assert.equal(record.facts.treeChecks?.switch?.state, 'mismatch');
  });
});
