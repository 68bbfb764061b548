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
    run: {} as DemoReport['run'],
    load: {
      summary: { failed: 0 } as DemoReport['load']['summary'],
      marks: [
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
});
