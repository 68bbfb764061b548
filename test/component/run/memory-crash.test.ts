/**
 * Crash safety of the patch run against the in-memory driver and disk store: a manager dies at each
 * step boundary (and after each step of the switch), forward and during the rollback; the recovery
 * at the next start of a manager finishes the run, exactly once, and the service ends on the patched
 * LC with its data (or, for the rollback, back on LC1 with the data written since the switch).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recoverAtStart } from '../../../src/app/index.ts';
import { createOwner, type Owner } from '../../../src/core/index.ts';
import { listRuns, rollbackRun, startRun, type RunDeps } from '../../../src/run/index.ts';
import { createMemoryRun, type MemoryRun } from '../../helpers/memory-run.ts';

const forward = [
  'find-standby',
  'scan',
  'stop-standby',
  'copy-system',
  'copy-app',
  'write-patches',
  'boot-standby',
  'reboot-standby',
  'check-standby',
  'switch',
  'record-applied',
  'watch',
];
const switchSteps = [
  'lc2-pass-old-flows',
  'lc1-new-address',
  'lc2-takes-address',
  'drain',
  'health-after',
  'lift',
];
const rollback = ['rollback-prepare', 'rollback-presync', 'rollback-switch', 'rollback-finish'];

/** Run deps of a manager that dies at `point`: from there on it does nothing more, ever. */
function dyingAt(f: MemoryRun, point: string, owner: Owner): { deps: RunDeps; died: Promise<void> } {
  let die: () => void = () => undefined;
  const died = new Promise<void>((resolve) => (die = resolve));
  return {
    died,
    deps: {
      ...f.deps,
      owner,
      crashPoint: (at, when) => {
        if (`${at}:${when}` !== point) return;
        die();
        return new Promise<void>(() => undefined);
      },
    },
  };
}

async function recoverWith(f: MemoryRun): Promise<Owner> {
  const owner = createOwner();
  const report = await recoverAtStart({ db: f.db, host: f.mem.host, catalogue: f.catalogue, owner });
  assert.deepEqual(report.errors, []);
  assert.equal(report.skipped, false);
  return owner;
}

function assertSafe(f: MemoryRun): void {
  for (const [name, lc] of f.mem.driver.lcs) {
    assert.equal(lc.frozen, false, `${name} is not left frozen`);
    assert.equal(lc.writeLimits.size, 0, `${name} has no write limit left`);
  }
  const leases = f.db.prepare("SELECT resource FROM leases WHERE resource LIKE 'lc:%'").all();
  assert.deepEqual(leases, [], 'no LC stays leased');
}

const points = [
  ...forward.flatMap((s) => [`${s}:before`, `${s}:after`]),
  ...switchSteps.map((s) => `switch/${s}:after`),
  'record-applied:during',
];

/** When the catalogue says the patch was applied to LC1 (null: not applied). */
const appliedAt = (f: MemoryRun, patch: string): string | null =>
  f.catalogue.lcStates({ lc: 'lc1' }).find((s) => s.patch === patch)?.appliedAt ?? null;

for (const point of points) {
  test(`forward, the manager dies at ${point}: recovery at the next start finishes the run`, async (t) => {
    const f = await createMemoryRun();
    t.after(() => f.close());
    const patch = await f.addVersionPatch('1.0.1');
    f.writeData('lc1', 'before', 'written on lc1');
    const first = createOwner();
    const dying = dyingAt(f, point, first);
    void startRun({ lc: 'lc1', skipScan: true }, dying.deps);
    await dying.died;
    first.end();
    const recordedBefore = appliedAt(f, patch);
    // What a crash during the cut can leave: LC1 frozen and throttled.
    await f.mem.driver.freeze('lc1');
    await f.mem.driver.setWriteLimit('lc1', '/dev/memory-main', 1024);
    const second = await recoverWith(f);
    const [run] = listRuns(f.db);
    assert.equal(run?.state, 'switched', `${point}: ${run?.error ?? ''}`);
    assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });
    assert.equal(f.data('lc2', 'before'), 'written on lc1');
    assert.equal(run?.steps.filter((s) => s.state === 'done').length, forward.length);
    assert.ok(appliedAt(f, patch), 'the patch is recorded applied');
    if (recordedBefore) assert.equal(appliedAt(f, patch), recordedBefore, 'recorded once: its date is kept');
    assertSafe(f);
    // Exactly once: a second start finds nothing left to do.
    const again = await recoverAtStart({ db: f.db, host: f.mem.host, catalogue: f.catalogue, owner: second });
    assert.deepEqual([again.runs, again.switches, again.errors], [[], [], []]);
  });
}

for (const point of [
  ...rollback.flatMap((s) => [`${s}:before`, `${s}:after`]),
  ...['lc2-pass-old-flows', 'lc2-takes-address', 'drain', 'lift'].map((s) => `switch/${s}:after`),
]) {
  test(`rollback, the manager dies at ${point}: recovery finishes the rollback with the data`, async (t) => {
    const f = await createMemoryRun();
    t.after(() => f.close());
    await f.addVersionPatch('1.0.1');
    const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
    f.writeData('lc2', 'after', 'written on lc2');
    const first = createOwner();
    const dying = dyingAt(f, point, first);
    void rollbackRun(run.id, dying.deps);
    await dying.died;
    first.end();
    await recoverWith(f);
    const [back] = listRuns(f.db);
    assert.equal(back?.state, 'rolled-back', `${point}: ${back?.error ?? ''}`);
    assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
    assert.equal(f.data('lc1', 'after'), 'written on lc2');
    assertSafe(f);
  });
}

test('the manager dies during the watch: the next start watches only the time that is left', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const watchMs = 2000;
  const first = createOwner();
  const dying = dyingAt(f, 'watch:during', first);
  void startRun({ lc: 'lc1', skipScan: true, watchMs }, dying.deps);
  await dying.died;
  const diedAt = Date.now();
  first.end();
  await new Promise((r) => setTimeout(r, 800));
  const resumedAt = Date.now();
  await recoverWith(f);
  const recoveredIn = Date.now() - resumedAt;
  const [run] = listRuns(f.db);
  assert.equal(run?.state, 'switched', run?.error ?? '');
  const step = run?.steps.find((s) => s.name === 'watch');
  assert.equal(step?.state, 'done');
  assert.equal(step?.attempts, 2, 'the watch step ran again after the crash');
  assert.deepEqual(
    [run?.facts.watchOutcome, Date.parse(run?.facts.watchUntil ?? '') <= diedAt + watchMs],
    ['healthy', true],
    'the watch kept the end it fixed when it first started',
  );
  assert.ok(
    recoveredIn < watchMs - 400,
    `the resumed watch took ${recoveredIn} ms: only what was left of the ${watchMs} ms`,
  );
  assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });
  assertSafe(f);
});

test('the service fails during a watch resumed after a crash: the run rolls back by itself, with the data', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const first = createOwner();
  const dying = dyingAt(f, 'watch:during', first);
  void startRun({ lc: 'lc1', skipScan: true, watchMs: 5000 }, dying.deps);
  await dying.died;
  first.end();
  f.writeData('lc2', 'after', 'written on lc2');
  // LC2's service stops answering (its LC crashed; its disks are still there for the rollback's sync).
  f.mem.driver.lcs.get('lc2')!.state = 'crashed';
  await recoverWith(f);
  const [run] = listRuns(f.db);
  assert.equal(run?.state, 'rolled-back', run?.error ?? '');
  assert.equal(run?.facts.watchOutcome, 'unhealthy');
  assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
  assert.equal(f.data('lc1', 'after'), 'written on lc2');
  assertSafe(f);
});

test('a run that a live manager drives is not taken over by the recovery of another', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const first = createOwner();
  const dying = dyingAt(f, 'copy-app:after', first);
  void startRun({ lc: 'lc1', skipScan: true }, dying.deps);
  await dying.died;
  // `first` is still alive (say, a slow copy in another process): nothing is recovered.
  const report = await recoverAtStart({
    db: f.db,
    host: f.mem.host,
    catalogue: f.catalogue,
    owner: createOwner(),
  });
  assert.deepEqual(report.runs, []);
  assert.equal(listRuns(f.db)[0]?.state, 'running');
  // And another run on the same LC is refused: the busy check and the claim are one transaction.
  await assert.rejects(
    startRun({ lc: 'lc1', skipScan: true }, { ...f.deps, owner: createOwner() }),
    /RUN_BUSY|already part/,
  );
  first.end();
});
