/**
 * Finding 18 (the rest): the start of a run — the busy checks, the claim of LC1, the run and its steps,
 * the choice and the claim of the standby — is one transaction. Two manager processes starting runs at
 * the same instant: exactly one wins, the other is refused with a clear error and leaves nothing written.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { createLc } from '../../../src/app/index.ts';
import { exec } from '../../../src/core/index.ts';
import { demoService } from '../../../src/demo/index.ts';
import { listRuns } from '../../../src/run/index.ts';
import { createMemoryRun, type MemoryRun } from '../../helpers/memory-run.ts';

const child = path.join(import.meta.dirname, 'start-race-child.ts');

interface Outcome {
  won?: boolean;
  code?: string;
  message?: string;
}

/** Starts one child per LC, all at the same instant; resolves with what each printed. */
async function race(f: MemoryRun, lcs: readonly string[]): Promise<Outcome[]> {
  const goAt = Date.now() + 4000;
  const results = await Promise.all(
    lcs.map((lc) =>
      exec(['node', '--import', 'tsx', child, path.join(f.dir, 'understudy.db'), lc, String(goAt)], {
        timeoutMs: 60_000,
      }),
    ),
  );
  return results.map((r) => JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Outcome);
}

function leases(f: MemoryRun): { resource: string; purpose: string }[] {
  return f.db
    .prepare("SELECT resource, purpose FROM leases WHERE resource LIKE 'lc:%' ORDER BY resource")
    .all() as {
    resource: string;
    purpose: string;
  }[];
}

test('finding 18: two processes start a run of the same LC at once: one wins, the other gets RUN_BUSY, nothing half-written', async (t) => {
  for (let round = 0; round < 3; round++) {
    const f = await createMemoryRun();
    t.after(() => f.close());
    await f.addVersionPatch('1.0.1');
    const outcomes = await race(f, ['lc1', 'lc1']);
    const winners = outcomes.filter((o) => o.won);
    const losers = outcomes.filter((o) => !o.won);
    assert.equal(winners.length, 1, JSON.stringify(outcomes));
    assert.equal(losers[0]?.code, 'RUN_BUSY', JSON.stringify(outcomes));
    assert.match(losers[0]?.message ?? '', /"lc1" is already part of patch run r\S+ \(its LC, running/);
    const runs = listRuns(f.db);
    assert.equal(runs.length, 1, 'one run recorded');
    const [run] = runs;
    assert.equal(run?.standby, 'lc2');
    assert.deepEqual(run?.facts, {
      standby: 'lc2',
      serviceAddress: '198.18.0.10/24',
      diskMap: { system: 'system', app: 'app' },
    });
    assert.equal(run?.steps.length, 12);
    assert.ok(run?.steps.every((s) => s.state === 'pending'));
    assert.deepEqual(
      leases(f).map((l) => [l.resource, l.purpose]),
      [
        ['lc:lc1', `run ${run?.id}`],
        ['lc:lc2', `run ${run?.id}`],
      ],
    );
  }
});

test('finding 18: two processes start runs of two LCs that only one standby covers: one wins, the other gets RUN_NO_STANDBY, nothing half-written', async (t) => {
  for (let round = 0; round < 3; round++) {
    const f = await createMemoryRun();
    t.after(() => f.close());
    await createLc(f.db, f.mem.host, {
      name: 'lc3',
      image: 'busybox',
      cpus: '0',
      memoryMb: 64,
      systemDiskMb: 64,
      appDiskMb: 32,
      addresses: ['198.18.0.12/24'],
      role: 'active',
      services: [demoService],
    });
    await f.addVersionPatch('1.0.1', 'lc1');
    await f.addVersionPatch('1.0.2', 'lc3');
    const outcomes = await race(f, ['lc1', 'lc3']);
    const winners = outcomes.filter((o) => o.won);
    const losers = outcomes.filter((o) => !o.won);
    assert.equal(winners.length, 1, JSON.stringify(outcomes));
    assert.equal(losers[0]?.code, 'RUN_NO_STANDBY', JSON.stringify(outcomes));
    assert.match(losers[0]?.message ?? '', /lc2: it is taken by a patch run in progress/);
    const runs = listRuns(f.db);
    assert.equal(runs.length, 1, 'only the winner is recorded');
    assert.equal(runs[0]?.standby, 'lc2');
    assert.deepEqual(
      leases(f).map((l) => l.resource),
      [`lc:${runs[0]?.lc}`, 'lc:lc2'].sort(),
    );
  }
});
