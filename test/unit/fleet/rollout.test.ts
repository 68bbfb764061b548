// Rollout logic with a fixed clock: patch selection, targets, windows in their time zones, waves,
// health-gated progression, rate controls and operator commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyCommand,
  batchJobs,
  countFailures,
  decide,
  isWindowOpen,
  nextOpening,
  planWaves,
  resolveAmount,
  resolveRolloutSpec,
  rollbackTargets,
  selectPatches,
  selectTargets,
  targetKey,
  unhealthyTargets,
  type FleetTarget,
  type WorkView,
} from '../../../src/fleet/index.ts';

const day = 24 * 3600 * 1000;
const now = new Date('2026-03-04T12:00:00Z'); // a Wednesday

function fleet(n: number, group = 'web'): FleetTarget[] {
  return Array.from({ length: n }, (_, i) => ({
    host: `h${String(i).padStart(3, '0')}`,
    lc: 'lc1',
    group,
    labels: { env: i % 2 === 0 ? 'prod' : 'staging' },
  }));
}

test('patch selection: security only, by age since first seen, explicit, combined', () => {
  const catalogue = [
    { name: 'openssl-3.0.15', security: true, firstSeen: new Date(now.getTime() - 10 * day) },
    { name: 'curl-8.9', security: true, firstSeen: new Date(now.getTime() - 1 * day) },
    { name: 'vim-9.1', security: false, firstSeen: new Date(now.getTime() - 30 * day) },
  ];
  const names = (sel: unknown) =>
    selectPatches(catalogue, resolveRolloutSpec({ name: 'r', patches: sel }).patches, now).map((p) => p.name);
  assert.deepEqual(names({ securityOnly: true }), ['curl-8.9', 'openssl-3.0.15']);
  assert.deepEqual(names({ minAgeDays: 7 }), ['openssl-3.0.15', 'vim-9.1']);
  assert.deepEqual(names({ securityOnly: true, minAgeDays: 7 }), ['openssl-3.0.15']);
  assert.deepEqual(names({ explicit: ['vim-9.1', 'nope'] }), ['vim-9.1']);
  // exactly N days is old enough; a second less is not
  assert.deepEqual(names({ minAgeDays: 10, securityOnly: true }), ['openssl-3.0.15']);
  assert.deepEqual(names({ minAgeDays: 10.0001, securityOnly: true }), []);
});

test('target set: groups and labels, stable order', () => {
  const all = [...fleet(4, 'web'), ...fleet(2, 'db')];
  const spec = resolveRolloutSpec({ name: 'r', targets: { groups: ['web'], labels: { env: 'prod' } } });
  assert.deepEqual(selectTargets(all, spec.targets).map(targetKey), ['h000/lc1', 'h002/lc1']);
  assert.equal(selectTargets(all, resolveRolloutSpec({ name: 'r' }).targets)[0]?.group, 'db');
});

test('amounts: counts, percentages rounded up, minimum', () => {
  assert.equal(resolveAmount(3, 100), 3);
  assert.equal(resolveAmount('10%', 25), 3);
  assert.equal(resolveAmount('0%', 25, 1), 1);
  assert.equal(resolveAmount(50, 10), 10);
});

test('invalid rollouts are refused with the field named', () => {
  assert.throws(() => resolveRolloutSpec({ name: 'r', maxErrors: '5 percent' }), /maxErrors/);
  assert.throws(
    () =>
      resolveRolloutSpec({
        name: 'r',
        windows: { web: [{ timeZone: 'Mars/Olympus', start: '02:00', durationMinutes: 60 }] },
      }),
    /Mars\/Olympus/,
  );
  assert.throws(
    () =>
      resolveRolloutSpec({
        name: 'r',
        windows: { web: [{ timeZone: 'UTC', start: '25:00', durationMinutes: 60 }] },
      }),
    /start/,
  );
});

test('maintenance windows follow the group time zone, across midnight and DST', () => {
  const paris = { timeZone: 'Europe/Paris', days: ['sat' as const], start: '23:00', durationMinutes: 180 };
  // Saturday 2026-03-07 22:30 UTC = 23:30 Paris (CET, UTC+1): open
  assert.equal(isWindowOpen(paris, new Date('2026-03-07T22:30:00Z')), true);
  // Sunday 01:59 Paris = 00:59 UTC: still open (runs past midnight)
  assert.equal(isWindowOpen(paris, new Date('2026-03-08T00:59:00Z')), true);
  assert.equal(isWindowOpen(paris, new Date('2026-03-08T01:00:00Z')), false);
  // after the switch to summer time (UTC+2), 23:00 Paris is 21:00 UTC
  assert.equal(isWindowOpen(paris, new Date('2026-04-04T21:05:00Z')), true);
  assert.equal(isWindowOpen(paris, new Date('2026-04-04T20:55:00Z')), false);
  // the same UTC instant is inside a Tokyo window and outside a New York one
  const at = new Date('2026-03-04T17:30:00Z'); // Thu 02:30 Tokyo, Wed 12:30 New York
  assert.equal(
    isWindowOpen({ timeZone: 'Asia/Tokyo', days: ['thu'], start: '02:00', durationMinutes: 60 }, at),
    true,
  );
  assert.equal(
    isWindowOpen({ timeZone: 'America/New_York', days: ['thu'], start: '02:00', durationMinutes: 60 }, at),
    false,
  );
  assert.deepEqual(nextOpening([paris], new Date('2026-03-07T12:00:00Z')), new Date('2026-03-07T22:00:00Z'));
});

test('waves: a canary first, then waves of max concurrency', () => {
  const spec = resolveRolloutSpec({ name: 'r', canary: 1, maxConcurrency: '20%' });
  const waves = planWaves(fleet(11), spec);
  assert.deepEqual(
    waves.map((w) => w.length),
    [1, 3, 3, 3, 1],
  );
  assert.deepEqual(planWaves([], spec), []);
  assert.equal(new Set(waves.flat().map(targetKey)).size, 11);
});

function progress(specInput: Record<string, unknown>, targets: FleetTarget[]) {
  const spec = resolveRolloutSpec({ name: 'r', ...specInput });
  const waves = planWaves(targets, spec);
  const work = new Map<string, WorkView>();
  return {
    spec,
    waves,
    work,
    step: (at: Date, state: 'running' | 'paused' = 'running') =>
      decide({ spec, state, waves, work, now: at }),
  };
}

test('progression: canary, health watch gates the next wave, then completion', () => {
  const r = progress({ canary: 1, maxConcurrency: 2, watchSeconds: 600 }, fleet(5));
  let d = r.step(now);
  assert.equal(d.kind, 'dispatch');
  assert.equal(d.kind === 'dispatch' && d.wave, 0);
  assert.deepEqual(d.kind === 'dispatch' && d.targets.map(targetKey), ['h000/lc1']);
  r.work.set('h000/lc1', { state: 'running' });
  assert.deepEqual(r.step(now), { kind: 'wait', wave: 0, reason: 'running' });
  const done = new Date(now.getTime() + 60_000);
  r.work.set('h000/lc1', { state: 'succeeded', finishedAt: done });
  d = r.step(new Date(done.getTime() + 599_000));
  assert.equal(d.kind, 'wait');
  assert.equal(d.kind === 'wait' && d.reason, 'watch');
  assert.deepEqual(d.kind === 'wait' && d.until, new Date(done.getTime() + 600_000));
  d = r.step(new Date(done.getTime() + 600_000));
  assert.equal(d.kind === 'dispatch' && d.wave, 1);
  assert.deepEqual(d.kind === 'dispatch' && d.targets.map(targetKey), ['h001/lc1', 'h002/lc1']);
  for (const t of r.waves.flat()) r.work.set(targetKey(t), { state: 'succeeded', finishedAt: done });
  assert.deepEqual(r.step(new Date(done.getTime() + 600_000)), { kind: 'complete' });
  assert.deepEqual(r.step(now, 'paused'), { kind: 'idle', state: 'paused' });
});

test('a closed window keeps the rollout waiting and says until when', () => {
  const window = { timeZone: 'UTC', days: ['sun'], start: '02:00', durationMinutes: 120 };
  const r = progress({ canary: 1, windows: { web: [window] } }, fleet(3));
  const d = r.step(now);
  assert.deepEqual(d, { kind: 'wait', wave: 0, reason: 'window', until: new Date('2026-03-08T02:00:00Z') });
  const inside = new Date('2026-03-08T02:30:00Z');
  assert.equal(r.step(inside).kind, 'dispatch');
});

test('max errors as a count: a failure in wave 2 halts before wave 3', () => {
  const r = progress({ canary: 1, maxConcurrency: 2, maxErrors: 0, watchSeconds: 0 }, fleet(5));
  r.work.set('h000/lc1', { state: 'succeeded', finishedAt: now });
  r.work.set('h001/lc1', { state: 'failed', finishedAt: now });
  r.work.set('h002/lc1', { state: 'running' });
  assert.deepEqual(r.step(now), { kind: 'halt', wave: 1, failures: 1, maxErrors: 0 });
});

test('max errors as a percentage tolerates failures up to the share', () => {
  const r = progress({ canary: 1, maxConcurrency: 4, maxErrors: '20%', watchSeconds: 0 }, fleet(10));
  r.work.set('h000/lc1', { state: 'succeeded', finishedAt: now });
  r.work.set('h001/lc1', { state: 'failed', finishedAt: now });
  r.work.set('h002/lc1', { state: 'reverted', finishedAt: now });
  r.work.set('h003/lc1', { state: 'succeeded', finishedAt: now });
  r.work.set('h004/lc1', { state: 'succeeded', finishedAt: now });
  assert.equal(r.step(now).kind, 'dispatch'); // 2 failures ≤ 20% of 10
  r.work.set('h005/lc1', { state: 'failed', finishedAt: now });
  assert.equal(r.step(now).kind, 'halt');
});

test('operator commands and wave rollback', () => {
  assert.equal(applyCommand('running', 'pause'), 'paused');
  assert.equal(applyCommand('paused', 'resume'), 'running');
  assert.equal(applyCommand('paused', 'stop'), 'stopped');
  assert.throws(() => applyCommand('halted', 'resume'), /cannot resume a rollout that is halted/);
  assert.throws(() => applyCommand('completed', 'pause'), /FLEET_ROLLOUT_STATE|cannot pause/);
  // Only an accepted approval starts a rollout awaiting one; an operator may still stop it.
  assert.throws(
    () => applyCommand('awaiting-approval', 'resume'),
    /cannot resume a rollout that is awaiting/,
  );
  assert.throws(() => applyCommand('awaiting-approval', 'pause'), /cannot pause/);
  assert.equal(applyCommand('awaiting-approval', 'stop'), 'stopped');
  const wave = fleet(3);
  const work = new Map<string, WorkView>([
    ['h000/lc1', { state: 'succeeded' }],
    ['h001/lc1', { state: 'failed' }],
  ]);
  assert.deepEqual(rollbackTargets(wave, work).map(targetKey), ['h000/lc1']);
});

test('dispatch batches: one per rollout, wave and kind, at most `size` targets each, in wave order', () => {
  const jobs = [
    ...fleet(5).map((t) => ({ rolloutId: 1, wave: 0, host: t.host, lc: t.lc, kind: 'patch' as const })),
    { rolloutId: 1, wave: 0, host: 'h000', lc: 'lc1', kind: 'rollback' as const },
    { rolloutId: 2, wave: 1, host: 'h009', lc: 'lc2', kind: 'patch' as const },
  ];
  const batches = batchJobs(jobs, 2);
  assert.deepEqual(
    batches.map((b) => `${b.rolloutId}:${b.wave}:${b.kind}:${b.targets.map((t) => t.host).join(',')}`),
    ['1:0:patch:h000,h001', '1:0:patch:h002,h003', '1:0:patch:h004', '1:0:rollback:h000', '2:1:patch:h009'],
  );
  assert.deepEqual(batchJobs([], 500), []);
});

test('a switched LC reported unhealthy during the watch counts against max errors', () => {
  const spec = resolveRolloutSpec({
    name: 'r',
    canary: 1,
    maxConcurrency: 2,
    maxErrors: 0,
    watchSeconds: 60,
  });
  const waves = planWaves(fleet(3), spec);
  const finishedAt = new Date(now.getTime() - 10_000);
  const healthy = new Map<string, WorkView>([[targetKey(waves[0]![0]!), { state: 'succeeded', finishedAt }]]);
  assert.equal(countFailures(healthy), 0);
  assert.deepEqual(decide({ spec, state: 'running', waves, work: healthy, now }), {
    kind: 'wait',
    wave: 0,
    reason: 'watch',
    until: new Date(finishedAt.getTime() + 60_000),
  });
  const unhealthy = new Map<string, WorkView>([
    [targetKey(waves[0]![0]!), { state: 'succeeded', finishedAt, unhealthy: true }],
  ]);
  assert.equal(countFailures(unhealthy), 1);
  assert.deepEqual(decide({ spec, state: 'running', waves, work: unhealthy, now }), {
    kind: 'halt',
    wave: 0,
    failures: 1,
    maxErrors: 0,
  });
});

test('automatic rollback: switched LCs reported unhealthy, without rollback work yet, with their wave', () => {
  const waves = [fleet(1), fleet(3).slice(1)];
  const work = new Map<string, WorkView>([
    ['h000/lc1', { state: 'succeeded', unhealthy: true }],
    ['h001/lc1', { state: 'succeeded', unhealthy: true }],
    ['h002/lc1', { state: 'succeeded' }],
  ]);
  assert.deepEqual(
    unhealthyTargets(waves, work, new Map()).map((u) => `${u.wave}:${targetKey(u.target)}`),
    ['0:h000/lc1', '1:h001/lc1'],
  );
  // one already has its rollback work: never queued twice
  const rollbacks = new Map<string, WorkView>([['h000/lc1', { state: 'queued' }]]);
  assert.deepEqual(
    unhealthyTargets(waves, work, rollbacks).map((u) => targetKey(u.target)),
    ['h001/lc1'],
  );
  // a reverted or failed LC is not switched any more
  work.set('h001/lc1', { state: 'reverted', unhealthy: true });
  assert.deepEqual(unhealthyTargets(waves, work, rollbacks), []);
  assert.equal(resolveRolloutSpec({ name: 'x' }).autoRollback, true);
});
