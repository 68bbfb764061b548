import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeDemo, type DemoReport } from '../../../src/demo/index.ts';
import type { RequestRecord } from '../../../src/loadgen/index.ts';

function report(windowLatencies: number[], extra: Partial<DemoReport> = {}): DemoReport {
  const records: RequestRecord[] = [];
  let seq = 0;
  const add = (at: number, latencyMs: number, kind: RequestRecord['kind'] = 'keepalive'): void => {
    records.push({ seq: seq++, kind, scheduledAt: at, latencyMs, lagMs: 0, outcome: 'ok' });
  };
  for (let i = 0; i < 1000; i++) add(1000 + i, 5 + (i % 10)); // steady: p99 14 ms
  windowLatencies.forEach((l, i) => add(5000 + i, l));
  add(5100, 2100, 'upload'); // an upload paced over 2 s: 100 ms of delay
  return {
    stateDir: '/tmp/x',
    driver: 'namespace',
    bridge: 'usbr0',
    client: 'ustc-0',
    service: 'the demo service',
    patch: 'demo-1.0.1',
    stateful: true,
    run: {} as DemoReport['run'],
    load: {
      summary: { failed: 0 } as DemoReport['load']['summary'],
      marks: [
        { label: 'run-start', at: 3000 },
        { label: 'switch-start', at: 4990 },
        { label: 'switch-end', at: 6000 },
      ],
      records,
      ackedWrites: [],
    },
    versionBefore: '1.0.0',
    versionAfter: '1.0.1',
    dataChecked: 200,
    dataLost: [],
    wallMs: 1,
    ...extra,
  };
}

test('the demo meets its targets only when every switch figure is within them', () => {
  const good = judgeDemo(report([20, 60, 110]));
  assert.equal(good.ok, true, good.lines.join('\n'));
  assert.equal(good.steadyP99Ms, 14);
  assert.equal(good.maxAddedMs, 96);

  const slow = judgeDemo(report([20, 2000]));
  assert.equal(slow.ok, false);
  assert.equal(slow.windowDelayedOver1s, 1);
  assert.ok(slow.lines.some((l) => l.startsWith('MISSED') && l.includes('max added 1986.0 ms')));
  assert.ok(slow.lines.some((l) => l.startsWith('MISSED') && l.includes('1 requests delayed >= 1 s')));

  const lost = judgeDemo(report([20], { dataLost: ['/kv/a'] }));
  assert.equal(lost.ok, false);
  const unpatched = judgeDemo(report([20], { versionAfter: '1.0.0' }));
  assert.equal(unpatched.ok, false);

  // A request delayed by 1 s or more anywhere in the run (here while the copy ran) misses the run's target.
  const copy = report([20]);
  copy.load.records.push({
    seq: 9999,
    kind: 'new-conn',
    scheduledAt: 4000,
    latencyMs: 1200,
    lagMs: 0,
    outcome: 'ok',
  });
  const slowCopy = judgeDemo(copy);
  assert.equal(slowCopy.ok, false);
  assert.equal(slowCopy.runDelayedOver1s, 1);
  assert.ok(
    slowCopy.lines.some(
      (l) => l.startsWith('MISSED') && l.includes('whole run') && l.includes('1 requests delayed'),
    ),
  );
  assert.ok(
    slowCopy.lines.some((l) => l.startsWith('met') && l.includes('switch window: 0 requests delayed')),
  );

  // No request sent while the switch ran (the load ended before it): the switch figures are not met.
  const unloaded = report([]);
  unloaded.load.records = unloaded.load.records.filter((x) => x.scheduledAt < 4990);
  const none = judgeDemo(unloaded);
  assert.equal(none.ok, false);
  assert.equal(none.lines.filter((l) => l.startsWith('MISSED') && l.includes('switch window')).length, 2);

  // A long run at 1,000 requests/s: hundreds of thousands of records are judged (no spread into Math.max).
  const long = report([20]);
  for (let i = 0; i < 300_000; i++)
    long.load.records.push({
      seq: 10_000 + i,
      kind: 'keepalive',
      scheduledAt: 3000 + (i % 1000),
      latencyMs: 8,
      lagMs: 0,
      outcome: 'ok',
    });
  assert.equal(judgeDemo(long).ok, true);

  // A service without data the demo writes (nginx serving a site): no data line, the rest still judged.
  const site = judgeDemo(report([20, 60], { stateful: false, dataChecked: 0 }));
  assert.equal(site.ok, true, site.lines.join('\n'));
  assert.ok(!site.lines.some((l) => l.includes('writes lost')));
  assert.equal(judgeDemo(report([20, 2000], { stateful: false, dataChecked: 0 })).ok, false);
});
