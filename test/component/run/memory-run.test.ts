/**
 * The whole patch run — forward, switch, rollback — against the in-memory driver and disk store: the
 * run reaches LCs and disks only through the PartitioningDriver and DiskStore ports.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { getLc, setServices } from '../../../src/inventory/index.ts';
import {
  RunJournal,
  bindLcSwitch,
  bindPlannedSwitch,
  getRun,
  listRuns,
  recoverRuns,
  rollbackRun,
  startRun,
  treeChecksSettled,
  treeMismatchOf,
} from '../../../src/run/index.ts';
import { renderRun } from '../../../src/cli/index.ts';
import { SwitchJournal, recoverSwitches } from '../../../src/switch/index.ts';
import { createMemoryRun } from '../../helpers/memory-run.ts';

test('forward: the standby is patched, the service moves with its data; rollback moves it back with the data written since', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  f.writeData('lc1', 'before', 'written on lc1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  assert.equal(run.state, 'switched', run.error ?? '');
  assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });
  assert.equal(f.data('lc2', 'before'), 'written on lc1');
  assert.equal(getLc(f.db, 'lc2').role, 'active');
  assert.equal(getLc(f.db, 'lc1').role, 'retired');
  assert.equal(f.catalogue.getPatch('demo-1.0.1').name, 'demo-1.0.1');

  f.writeData('lc2', 'after', 'written on lc2');
  const back = await rollbackRun(run.id, f.deps);
  assert.equal(back.state, 'rolled-back', back.error ?? '');
  assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
  assert.equal(f.data('lc1', 'after'), 'written on lc2');
  assert.equal(getLc(f.db, 'lc1').role, 'active');
});

test("an LC with an extra disk: every disk is copied onto the standby's disk for it (the standby's own disk map), and comes back at the rollback", async (t) => {
  // LC2 has no disk named "logs": the standby search maps LC1's logs disk onto LC2's "spare" disk,
  // which is mounted elsewhere.
  const f = await createMemoryRun({
    lc1: { extraDisks: [{ name: 'logs', sizeMb: 16, mountPath: '/var/logs' }] },
    lc2: { extraDisks: [{ name: 'spare', sizeMb: 24, mountPath: '/spare' }] },
  });
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const lc1 = f.mem.driver.lcs.get('lc1')!.spec;
  const lc2 = f.mem.driver.lcs.get('lc2')!.spec;
  f.mem.files.write(lc1, '/var/logs/boot.log', 'before the copy');
  const run = await startRun(
    { lc: 'lc1', skipScan: true },
    {
      ...f.deps,
      onEvent: (e) => {
        // Written after the copy, while LC1 still serves: the syncs of the switch carry it.
        if (e.step === 'check-standby' && e.state === 'running')
          f.mem.files.write(lc1, '/var/logs/late.log', 'after the copy');
      },
    },
  );
  assert.equal(run.state, 'switched', run.error ?? '');
  assert.deepEqual(
    run.steps.filter((s) => s.name.startsWith('copy-')).map((s) => [s.name, s.state]),
    [
      ['copy-system', 'done'],
      ['copy-app', 'done'],
      ['copy-logs', 'done'],
    ],
  );
  // Each copy step says what its time went into: the mode, each pass, the verification at the cut.
  const system = run.steps.find((s) => s.name === 'copy-system')?.output as {
    mode?: string;
    passes?: { kind: string; bytes: number; ms: number }[];
    verification?: { method: string; ms: number; bytesRead: number };
  };
  assert.equal(system.mode, 'send-receive');
  assert.deepEqual(
    system.passes?.map((p) => p.kind),
    ['full', 'catch-up', 'final'],
  );
  assert.ok(system.passes.every((p) => p.bytes >= 0 && p.ms >= 0));
  assert.equal(system.verification?.method, 'tree-hash');
  assert.ok(system.verification.bytesRead > 0, 'both trees were read');
  assert.deepEqual(run.facts.diskMap, { system: 'system', app: 'app', logs: 'spare' });
  assert.deepEqual(
    run.facts.copies?.map((c) => [c.disk, c.to]),
    [
      ['system', 'system'],
      ['app', 'app'],
      ['logs', 'spare'],
    ],
  );
  assert.equal(f.mem.files.read(lc2, '/spare/boot.log')?.toString(), 'before the copy');
  assert.equal(f.mem.files.read(lc2, '/spare/late.log')?.toString(), 'after the copy');
  assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });

  f.mem.files.write(lc2, '/spare/rolled.log', 'written on lc2');
  const back = await rollbackRun(run.id, f.deps);
  assert.equal(back.state, 'rolled-back', back.error ?? '');
  assert.equal(f.mem.files.read(lc1, '/var/logs/rolled.log')?.toString(), 'written on lc2');
  assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
});

test('finding 2: a cleanup failure after the point of no return never undoes the switch; the cleanup is retried and reported', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  f.writeData('lc1', 'before', 'written on lc1');
  // The instant switch's last steps lift LC1's hold on the service address (on lo): make that fail.
  const lift = 'ip addr del 198.18.0.10/32 dev lo';
  f.mem.driver.failing.set('lc1', new Set([lift]));
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  assert.equal(run.state, 'switched', 'the service runs on the patched standby: the run is switched');
  assert.match(run.error ?? '', /cleanup/, 'the pending cleanup is reported with the run');
  assert.equal(f.mem.driver.lcs.get('lc2')?.state, 'running', 'the serving LC is never stopped');
  assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });
  assert.equal(f.data('lc2', 'before'), 'written on lc1', "LC2's disks are not restored under it");
  assert.ok(
    !f.mem.disks.log.some((l) => l.startsWith('restore')),
    `no disk restored: ${f.mem.disks.log.join(', ')}`,
  );
  const [pending] = new SwitchJournal(f.db).list(1);
  assert.equal(pending?.state, 'running', 'the switch journal keeps the cleanup to retry');

  // The fault goes away; the next start of a manager finishes the cleanup (roll forward only).
  f.mem.driver.failing.clear();
  const { recovered, errors } = await recoverSwitches({
    db: f.db,
    bind: (plan) => bindPlannedSwitch(f.db, f.mem.host, plan),
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(
    recovered.map((r) => r.outcome),
    ['switched'],
  );
  assert.equal(new SwitchJournal(f.db).list(1)[0]?.state, 'switched');
  assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });
});

test('an LC that declares no service: the run and the switch are refused before anything is done, naming the LC and the fix', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  setServices(f.db, 'lc1', []);
  await f.addVersionPatch('1.0.1');
  const notDeclared = (e: unknown): boolean => {
    assert.ok(isUnderstudyError(e), String(e));
    assert.equal(e.code, 'SERVICE_NOT_DECLARED');
    assert.match(e.message, /^lc1 declares no service/);
    assert.match(e.hint ?? '', /understudy lc service set lc1 --service-unit/);
    return true;
  };
  await assert.rejects(startRun({ lc: 'lc1', skipScan: true }, f.deps), notDeclared);
  assert.equal(listRuns(f.db).length, 0, 'no run recorded');
  assert.equal(f.mem.driver.lcs.get('lc2')?.state, 'stopped', 'the standby untouched');
  assert.throws(
    () =>
      bindLcSwitch(f.db, f.mem.host, {
        from: 'lc1',
        to: 'lc2',
        method: 'instant',
        stateful: false,
        drainTimeoutMs: 1000,
      }),
    notDeclared,
  );
  assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
});

test('the whole-tree check after the stateful switch: an honest switch passes; a standby file that differs unseen fails the watch and the run rolls back with its data', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  f.writeData('lc1', 'key', 'written on lc1');
  const honest = await startRun({ lc: 'lc1', skipScan: true, watchMs: 600 }, f.deps);
  assert.equal(honest.state, 'switched', honest.error ?? '');
  const verified = f.events.filter((e) => e.progress?.phase === 'verify.tree');
  assert.deepEqual(
    verified.map((e) => [e.step, e.progress?.result, e.progress?.from, e.progress?.to]),
    [['switch', 'ok', 'lc1/app', 'lc2/app']],
    'one check per data disk (the system disk keeps its patch and is not compared)',
  );
  const back = await rollbackRun(honest.id, f.deps);
  assert.equal(back.state, 'rolled-back', back.error ?? '');

  // LC2's copy of a file differs from LC1's, and no sync sees it (its base says so too).
  await f.addVersionPatch('1.0.2');
  f.events.length = 0;
  const lc2 = f.mem.driver.lcs.get('lc2')!.spec;
  const run = await startRun(
    { lc: 'lc1', skipScan: true, watchMs: 600 },
    {
      ...f.deps,
      onEvent: (e) => {
        f.deps.onEvent?.(e);
        if (e.step === 'switch' && e.state === 'running')
          f.mem.disks.corruptUnseen({ lc: lc2, disk: 'app' }, '/key', 'corrupted on lc2');
      },
    },
  );
  assert.equal(run.state, 'rolled-back', run.error ?? '');
  assert.equal(run.facts.watchOutcome, 'unhealthy');
  assert.match(
    run.facts.watchDetail ?? '',
    /whole-tree check .* lc2\/app differs from lc1\/app at the cut: \/key/,
  );
  const mismatch = f.events.find((e) => e.progress?.phase === 'verify.tree');
  assert.equal(mismatch?.progress?.result, 'mismatch');
  assert.match(
    mismatch?.message ?? '',
    /verify.tree MISMATCH: lc2\/app differs from lc1\/app at the cut in \/key/,
  );
  assert.deepEqual(f.served(), { by: ['lc1'], version: '1.0.0' });
  assert.equal(
    f.data('lc1', 'key'),
    'written on lc1',
    "LC1's data is not overwritten by the standby's corruption",
  );
});

test('without a watch a mismatch of the whole-tree check rolls nothing back but is recorded, shown and alarmed', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  f.writeData('lc1', 'key', 'written on lc1');
  const lc2 = f.mem.driver.lcs.get('lc2')!.spec;
  const run = await startRun(
    { lc: 'lc1', skipScan: true },
    {
      ...f.deps,
      onEvent: (e) => {
        f.deps.onEvent?.(e);
        if (e.step === 'switch' && e.state === 'running')
          f.mem.disks.corruptUnseen({ lc: lc2, disk: 'app' }, '/key', 'corrupted on lc2');
      },
    },
  );
  await treeChecksSettled(run.id);
  const ended = getRun(f.deps.db, run.id);
  assert.equal(ended.state, 'switched', 'no watch: nothing is rolled back');
  assert.deepEqual(f.served().by, ['lc2']);
  assert.equal(ended.facts.treeChecks?.switch?.state, 'mismatch');
  assert.match(treeMismatchOf(ended) ?? '', /lc2\/app differs from lc1\/app at the cut: \/key/);
  const shown = renderRun(ended);
  assert.match(shown.split('\n')[0] ?? '', /switched — DATA MISMATCH after the switch/);
  assert.match(shown, /verify.tree after switch: MISMATCH — lc2\/app differs/);
  const event = f.events.find((e) => e.progress?.phase === 'verify.tree');
  assert.equal(event?.progress?.result, 'mismatch');
});

test('a whole-tree check left running by a dead manager is run again at the next start, or said not done', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
  await treeChecksSettled(run.id);
  const journal = new RunJournal(f.deps.db);
  const dead = '999999:1:dead';
  const leaveRunning = (id: string, step: string): void => {
    const facts = journal.get(id).facts;
    const fact = facts.treeChecks?.[step];
    assert.ok(fact, `a ${step} check was recorded`);
    journal.saveFacts(id, {
      ...facts,
      treeChecks: { ...facts.treeChecks, [step]: { ...fact, state: 'running', owner: dead } },
    });
  };
  leaveRunning(run.id, 'switch');
  f.events.length = 0;
  await recoverRuns(f.deps);
  await treeChecksSettled(run.id);
  assert.equal(getRun(f.deps.db, run.id).facts.treeChecks?.switch?.state, 'ok', 'run again');
  assert.ok(
    f.events.some((e) => /stopped during the whole-tree check .* it runs again/.test(e.message ?? '')),
  );

  // Once the run is rolled back, the forward switch's check cannot be made any more: it says so.
  await rollbackRun(run.id, f.deps);
  await treeChecksSettled(run.id);
  leaveRunning(run.id, 'switch');
  await recoverRuns(f.deps);
  const check = getRun(f.deps.db, run.id).facts.treeChecks?.switch;
  assert.equal(check?.state, 'skipped');
  assert.match(
    check?.detail ?? '',
    /not done: the manager .* stopped during the check, and the run is rolled-back since/,
  );
  assert.match(renderRun(getRun(f.deps.db, run.id)), /verify.tree after switch: skipped — not done/);
});

test('a writer that keeps ahead of the catch-up sync is slowed until the switch is over, and nothing it wrote is lost', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  const lc1 = f.mem.driver.lcs.get('lc1')!;
  // Until LC1's writes are limited, every sync from LC1 finds 150 new files on its app disk.
  let written = 0;
  const sync = f.mem.disks.sync.bind(f.mem.disks);
  const limitsSeen: number[] = [];
  f.mem.disks.sync = async (from, to, options) => {
    if (from.lc.name === 'lc1') {
      if (lc1.writeLimits.size === 0) for (let i = 0; i < 150; i++) f.writeData('lc1', `k${written++}`, 'v');
      else limitsSeen.push(...lc1.writeLimits.values());
    }
    return sync(from, to, options);
  };
  const notes: string[] = [];
  const run = await startRun(
    { lc: 'lc1', skipScan: true },
    { ...f.deps, onEvent: (e) => e.step === 'switch' && e.message && notes.push(e.message) },
  );
  assert.equal(run.state, 'switched', run.error ?? '');
  const note = notes.find((n) => n.startsWith('catch-up sync:'));
  assert.match(
    note ?? '',
    /writes limited on lc1\/app to \d+\.\d MiB\/s until the switch is over/,
    notes.join('\n'),
  );
  assert.ok(limitsSeen.length > 0 && limitsSeen.every((bps) => bps >= 1024 * 1024), String(limitsSeen));
  assert.equal(lc1.writeLimits.size, 0, 'the limit is lifted once the switch is over');
  for (const key of [`k0`, `k${written - 1}`]) assert.equal(f.data('lc2', key), 'v', key);
});
