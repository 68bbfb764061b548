/**
 * The cut of a stateful instant switch, end to end: real namespaces on a bridge, the demo service in
 * each LC, real TCP from a client namespace. The cut waits for LC1's writes, not its connections: slow
 * uploads go on on LC1 while LC2 already serves; every acknowledged write is on LC2; a write that
 * would hold new requests too long is reported before anything changes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { exec, isUnderstudyError, sleep, spawnProcess } from '../../../src/core/index.ts';
import { openStore, type Db } from '../../../src/store/index.ts';
import { runSwitch, switchSchema, type SwitchPlanInput } from '../../../src/switch/index.ts';
import { startClientLoad } from './load.ts';
import { createTopology, type Topology } from './topology.ts';

async function setUp(t: TestContext): Promise<{ topo: Topology; db: Db; plan: SwitchPlanInput }> {
  const topo = await createTopology({ lc1Nics: { eth0: ['NET.10/24'] }, lc2Nics: { eth2: ['NET.12/24'] } });
  t.after(() => topo.destroy());
  const db = openStore(':memory:', [switchSchema]);
  t.after(() => db.close());
  const plan: SwitchPlanInput = {
    method: 'instant',
    stateful: true,
    service: { address: `${topo.net}.10/24`, port: topo.port },
    from: { lc: topo.lc1.name, nic: 'eth0', mac: topo.lc1.nics.eth0!.mac, newAddress: `${topo.net}.11/24` },
    to: { lc: topo.lc2.name, nic: 'eth2', mac: topo.lc2.nics.eth2!.mac },
    drainTimeoutMs: 8000,
  };
  return { topo, db, plan };
}

/** The final sync of the fixture: LC1's logs replace LC2's (a temporary file renamed over each, as rsync does). */
function copyLogs(topo: Topology, log: (line: string) => void = () => undefined): () => Promise<void> {
  return async () => {
    for (const name of ['kv.log', 'notes.log']) {
      const source = path.join(topo.lc1.dataDir, name);
      if (!fs.existsSync(source)) continue;
      const tmp = path.join(topo.lc2.dataDir, `.${name}.sync`);
      fs.copyFileSync(source, tmp);
      fs.renameSync(tmp, path.join(topo.lc2.dataDir, name));
    }
    log('synced');
  };
}

async function fetchIn(topo: Topology, urlPath: string): Promise<{ status: number; body: string }> {
  const r = await exec(
    [
      'ip',
      'netns',
      'exec',
      topo.clientNs,
      'curl',
      '-s',
      '-w',
      '\n%{http_code}',
      '--max-time',
      '5',
      `http://${topo.net}.10:${topo.port}${urlPath}`,
    ],
    { okCodes: [0, 7, 28, 52, 56] },
  );
  const lines = r.stdout.split('\n');
  const status = Number(lines.pop());
  return { status, body: lines.join('\n') };
}

test('cut by writes under load: slow uploads go on on LC1, the hold stays short, every acknowledged write is on LC2', async (t) => {
  const { topo, db, plan } = await setUp(t);
  const load = startClientLoad(topo.clientNs, {
    url: `http://${topo.net}.10:${topo.port}/`,
    rate: 400,
    durationMs: 6000,
    maxRequests: 100_000,
    mix: { newconn: 0.3, keepalive: 0.55, upload: 0.05, write: 0.1 },
    uploadDurationMs: 2000,
  });
  await sleep(2500); // ~40 uploads of 2 s in flight on LC1
  let syncAt = 0;
  let lc1LogAtSync = -1;
  const result = await runSwitch(plan, {
    db,
    from: topo.side(topo.lc1),
    to: topo.side(topo.lc2),
    moveNic: topo.moveNic,
    finalSync: async () => {
      lc1LogAtSync = fs.statSync(path.join(topo.lc1.dataDir, 'kv.log')).size;
      await copyLogs(topo)();
      syncAt = Date.now();
    },
  });
  const run = await load;
  assert.equal(result.outcome, 'switched');
  assert.equal(result.cut, 'writes');
  assert.equal(run.summary.failed, 0, JSON.stringify(run.summary.byErrorCode));

  // Slow uploads were in flight at the cut and finished on LC1 after LC2 served: they did not hold it.
  const uploadsFinishedOnLc1AfterSync = run.records.filter(
    (r) => r.kind === 'upload' && r.servedBy === topo.lc1.name && r.scheduledAt + r.latencyMs > syncAt,
  );
  assert.ok(uploadsFinishedOnLc1AfterSync.length > 0, 'uploads were still running on LC1 after the sync');
  assert.ok(
    result.holdMs < 1000,
    `the hold (${result.holdMs} ms) is not the 2 s of the uploads: ${JSON.stringify(result.phases)}`,
  );
  assert.ok((result.phases?.finishMs ?? 0) > 0, 'LC1 finished its uploads after the release');

  // LC1 wrote nothing after the cut, and LC2 answered nothing before the sync.
  assert.equal(fs.statSync(path.join(topo.lc1.dataDir, 'kv.log')).size, lc1LogAtSync);
  for (const r of run.records.filter((x) => x.servedBy === topo.lc2.name))
    assert.ok(r.scheduledAt + r.latencyMs >= syncAt, 'LC2 answered only after the final sync');

  // Every acknowledged write is on LC2, among them the last ones LC1 acknowledged before the cut.
  const lastOnLc1 = run.records
    .filter((r) => r.kind === 'write' && r.servedBy === topo.lc1.name)
    .sort((a, b) => b.scheduledAt + b.latencyMs - (a.scheduledAt + a.latencyMs))[0];
  assert.ok(lastOnLc1, 'LC1 acknowledged writes');
  assert.ok(
    syncAt - (lastOnLc1.scheduledAt + lastOnLc1.latencyMs) < 1000,
    'a write was acknowledged by LC1 within a second before the cut',
  );
  const written = new Set(run.ackedWrites.map((w) => w.key));
  assert.ok(written.has(`lg-${run.ackedWrites[0]!.key.split('-')[1]}-${lastOnLc1.seq}`));
  let lost = 0;
  for (const w of run.ackedWrites) {
    const got = await fetchIn(topo, w.path);
    if (got.status !== 200 || got.body !== w.value) lost += 1;
  }
  assert.equal(lost, 0, `${lost} of ${run.ackedWrites.length} acknowledged writes are missing on LC2`);
  t.diagnostic(
    `hold ${result.holdMs} ms, phases ${JSON.stringify(result.phases)}, resent ${run.summary.resent}, max ${run.summary.latency.max} ms`,
  );
});

/**
 * A PUT whose body arrives slowly (`seconds` between its two halves), sent from the client namespace;
 * resolves with the HTTP status.
 */
function slowWrite(topo: Topology, key: string, seconds: number): Promise<number> {
  const script = `
    const net = require('node:net');
    const s = net.connect(${topo.port}, '${topo.net}.10');
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => { console.log(out.split(' ')[1] || '0'); });
    s.write('PUT /kv/${key} HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 8\\r\\nConnection: close\\r\\n\\r\\nslow');
    setTimeout(() => s.write('body'), ${seconds * 1000});
  `;
  const proc = spawnProcess(['ip', 'netns', 'exec', topo.clientNs, process.execPath, '-e', script]);
  let stdout = '';
  proc.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  return proc.done.then((r) => {
    const status = Number(stdout.trim());
    if (!status) throw new Error(`the slow write failed: ${stdout} ${r.stderr}`);
    return status;
  });
}

test('a write that would outlast maxHoldMs is reported before the switch: abort keeps the service on LC1, wait switches after it', async (t) => {
  const { topo, db, plan } = await setUp(t);
  const deps = {
    db,
    from: topo.side(topo.lc1),
    to: topo.side(topo.lc2),
    moveNic: topo.moveNic,
    finalSync: copyLogs(topo),
  };
  const first = slowWrite(topo, 'slow-a', 1.5);
  await sleep(300);
  await assert.rejects(
    runSwitch({ ...plan, cut: { onSlowWrites: 'abort', maxHoldMs: 100 } }, deps),
    (e) => isUnderstudyError(e, 'SWITCH_WRITES_TOO_SLOW') && e.message.includes('nothing was changed'),
  );
  const lc1Addresses = (await exec(['ip', '-n', topo.lc1.ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']))
    .stdout;
  assert.match(lc1Addresses, new RegExp(`${topo.net.replaceAll('.', '\\.')}\\.10/24`));
  assert.equal(await first, 200, 'the slow write finished on LC1');

  const second = slowWrite(topo, 'slow-b', 3);
  await sleep(300);
  const notes: string[] = [];
  const result = await runSwitch(
    { ...plan, cut: { onSlowWrites: 'wait', maxHoldMs: 100, retries: 50, retryIntervalMs: 100 } },
    { ...deps, onNote: (m) => notes.push(m) },
  );
  assert.equal(await second, 200);
  assert.equal(result.outcome, 'switched');
  assert.ok((result.phases?.gateRetries ?? 0) > 0, 'the switch waited for a quieter moment');
  assert.match(notes[0] ?? '', /write\(s\) in flight.*waiting 100 ms for a quieter moment/);
  for (const key of ['slow-a', 'slow-b']) {
    const got = await fetchIn(topo, `/kv/${key}`);
    assert.equal(got.status, 200);
    assert.equal(got.body, 'slowbody', `${key} is on LC2`);
  }
  assert.ok(result.holdMs < 1000, `hold ${result.holdMs} ms`);
});

test('the final sync fails under load: the switch is reversed, the requests LC2 held are served by LC1, no acknowledged write is lost', async (t) => {
  const { topo, db, plan } = await setUp(t);
  const load = startClientLoad(topo.clientNs, {
    url: `http://${topo.net}.10:${topo.port}/`,
    rate: 400,
    durationMs: 5000,
    maxRequests: 100_000,
    mix: { newconn: 0.4, keepalive: 0.4, write: 0.2 },
  });
  await sleep(1500);
  await assert.rejects(
    runSwitch(plan, {
      db,
      from: topo.side(topo.lc1),
      to: topo.side(topo.lc2),
      moveNic: topo.moveNic,
      finalSync: async () => {
        // LC2 holds the requests that reach it meanwhile.
        await sleep(300);
        throw new Error('the final sync failed half-way');
      },
    }),
    (e) => isUnderstudyError(e, 'SWITCH_REVERSED'),
  );
  const run = await load;
  const onLc2 = run.records.filter((r) => r.servedBy === topo.lc2.name);
  assert.equal(onLc2.length, 0, 'LC2 answered nothing itself');
  let lost = 0;
  for (const w of run.ackedWrites) {
    const got = await fetchIn(topo, w.path);
    if (got.status !== 200 || got.body !== w.value) lost += 1;
  }
  assert.equal(lost, 0, `${lost} of ${run.ackedWrites.length} acknowledged writes are missing on LC1`);
  assert.equal(run.summary.failed, 0, JSON.stringify(run.summary.byOutcome));
  t.diagnostic(`acknowledged writes ${run.ackedWrites.length}, ${JSON.stringify(run.summary.byOutcome)}`);
});
