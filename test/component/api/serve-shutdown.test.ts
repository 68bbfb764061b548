/**
 * Finding 9: shutting the daemon down while it drives a patch run. It stops taking work, lets the run
 * reach its next step boundary and hands it to recovery (no owner), and only then closes; the store
 * is never closed under a running step, and the next start's recovery finishes the run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApiToken, runDaemon } from '../../../src/api/index.ts';
import { recoverAtStart } from '../../../src/app/index.ts';
import { createOwner, silentLogger, sleep } from '../../../src/core/index.ts';
import { getRun } from '../../../src/run/index.ts';
import { createMemoryRun } from '../../helpers/memory-run.ts';

test('finding 9: serve shutdown stops a run at a step boundary and hands it to recovery, then closes', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  await f.addVersionPatch('1.0.1');
  f.mem.driver.bootDelayMs = 1500;
  const daemon = await runDaemon({
    stateDir: f.dir,
    logger: silentLogger,
    port: 0,
    manager: { stateDir: f.dir, db: f.db, catalogue: f.catalogue },
    host: f.mem.host,
  });
  const run = await daemon.operations.startRun({ lc: 'lc1', skipScan: true });
  for (let i = 0; i < 100; i++) {
    if (getRun(f.db, run.id).steps.find((s) => s.name === 'boot-standby')?.state === 'running') break;
    await sleep(20);
  }
  const started = Date.now();
  await daemon.close();
  const stopped = getRun(f.db, run.id);
  assert.ok(Date.now() - started < 10_000, 'the shutdown does not wait for the whole run');
  assert.equal(stopped.state, 'running', 'the run is left to recovery, not failed and not finished');
  assert.deepEqual(
    stopped.steps.filter((s) => s.state === 'failed'),
    [],
    'no step failed because of the shutdown',
  );
  assert.equal(stopped.steps.find((s) => s.name === 'boot-standby')?.state, 'done', 'the running step ended');
  assert.equal(
    stopped.steps.find((s) => s.name === 'reboot-standby')?.state,
    'pending',
    'no step began after it',
  );
  assert.equal(stopped.owner, null, 'handed to recovery');

  const report = await recoverAtStart({
    db: f.db,
    host: f.mem.host,
    catalogue: f.catalogue,
    owner: createOwner(),
  });
  assert.deepEqual(report.errors, []);
  assert.equal(getRun(f.db, run.id).state, 'switched');
  assert.deepEqual(f.served(), { by: ['lc2'], version: '1.0.1' });
});

test('serve shuts down while a client follows the event stream (an open dashboard)', async (t) => {
  const f = await createMemoryRun();
  t.after(() => f.close());
  const daemon = await runDaemon({
    stateDir: f.dir,
    logger: silentLogger,
    port: 0,
    manager: { stateDir: f.dir, db: f.db, catalogue: f.catalogue },
    host: f.mem.host,
  });
  const token = createApiToken(f.db, { operator: 'ann', scope: 'read' }).token;
  const res = await fetch(`${daemon.url}/v1/events?after=0`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  await reader.read(); // the stream is open: its first bytes arrived
  const started = Date.now();
  const closed = await Promise.race([daemon.close().then(() => true), sleep(10_000).then(() => false)]);
  assert.ok(closed, 'the daemon closed within 10 s with a client on the stream');
  assert.ok(Date.now() - started < 5_000);
  // The client sees its stream end (and would reconnect with Last-Event-ID to the next daemon).
  for (;;) if ((await reader.read()).done) break;
});
