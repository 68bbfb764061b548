import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLoad, windowLatency } from '../../../src/loadgen/index.ts';
import { startDemo, type DemoProcess } from '../demo-service/index.ts';

async function withDemo(t: { after: (fn: () => Promise<void>) => void }): Promise<DemoProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'loadgen-test-'));
  const demo = await startDemo({ dataDir: join(dir, 'data') });
  t.after(async () => {
    await demo.kill();
    await rm(dir, { recursive: true, force: true });
  });
  return demo;
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

test('1000 req/s for 3 s of mixed traffic against the demo service: all ok, latency from the schedule', async (t) => {
  const demo = await withDemo(t);
  const result = await startLoad({
    url: `http://127.0.0.1:${demo.port}/version`,
    rate: 1000,
    durationMs: 3000,
    maxRequests: 10_000,
    mix: { newconn: 0.3, keepalive: 0.5, upload: 0.1, write: 0.1 },
    uploadDurationMs: 1000,
    uploadBytes: 100_000,
  }).done;
  const s = result.summary;
  assert.equal(s.total, 3000);
  assert.equal(s.failed, 0, JSON.stringify(s.byErrorCode));
  assert.deepEqual(Object.fromEntries(Object.entries(s.byKind).map(([k, v]) => [k, v.total])), {
    'new-conn': 900,
    keepalive: 1500,
    upload: 300,
    write: 300,
  });
  assert.deepEqual(s.byServedBy, { [hostname()]: 3000 });
  assert.deepEqual(s.byVersion, { '1.0.0': 3000 });
  assert.ok(s.achievedRate > 950 && s.achievedRate < 1050, String(s.achievedRate));
  assert.ok(s.uploadLatency.p50 >= 1000, 'uploads were paced over the upload duration');
  t.diagnostic(`latency ${JSON.stringify(s.latency)} lag p99 ${s.lagP99Ms} ms`);
  // Latency counts from the scheduled start, so it includes any lateness of the generator itself.
  for (const record of result.records) assert.ok(record.latencyMs >= record.lagMs, JSON.stringify(record));
  // Scheduled starts are exactly 1 ms apart, whatever the answers did.
  const first = result.records[0];
  const last = result.records[result.records.length - 1];
  assert.ok(first && last);
  assert.ok(Math.abs(last.scheduledAt - first.scheduledAt - 2999) < 0.01);
  // Every acknowledged write is really stored.
  assert.equal(result.ackedWrites.length, 300);
  const keys = new Set(
    (JSON.parse(await getText(`http://127.0.0.1:${demo.port}/kv`)) as { keys: string[] }).keys,
  );
  for (const write of result.ackedWrites) assert.ok(keys.has(write.key), write.key);
});

test('drain mode during load: keep-alive connections are replaced without a single failed request', async (t) => {
  const demo = await withDemo(t);
  const load = startLoad({
    url: `http://127.0.0.1:${demo.port}/`,
    rate: 500,
    durationMs: 3000,
    maxRequests: 10_000,
    mix: { newconn: 0.2, keepalive: 0.7, upload: 0.1 },
    uploadDurationMs: 1500,
  });
  await sleep(800);
  const start = load.mark('drain');
  process.kill(demo.pid, 'SIGUSR1');
  await sleep(1200);
  process.kill(demo.pid, 'SIGUSR2');
  const end = load.mark('undrain');
  const result = await load.done;
  assert.equal(result.summary.total, 1500);
  assert.equal(result.summary.failed, 0, JSON.stringify(result.summary.byErrorCode));
  assert.ok(
    result.summary.connectionsOpened > 300 + 150 + 100,
    'drained keep-alive connections were replaced',
  );
  const added = windowLatency(result.records, { t0: start.at, t1: end.at, uploadDurationMs: 1500 });
  assert.equal(added.window.failed, 0);
  assert.ok(added.window.count > 400);
});
