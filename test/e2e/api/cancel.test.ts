/**
 * Cancelling a patch run driven by `serve`, on real LCs under real load: during the copy of the
 * system disk (btrfs send/receive killed, the partial copy removed, the standby's own disk back) and
 * during the boot of the standby (its patch script still running: the standby is stopped). The run
 * ends `cancelled` with its events, LC1 serves throughout with 0 failed requests, and nothing is
 * left behind. Once the switch has started, cancel is refused: the run only rolls forward.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec, waitFor } from '../../../src/core/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { standbyPaths } from '../../../src/run/index.ts';
import { getCopyJob } from '../../../src/disk-copy/index.ts';
import { openStore } from '../../../src/store/index.ts';
import { allSchemas } from '../../../src/app/index.ts';
import { statePaths } from '../../../src/core/index.ts';
import type { ClientLoadReport } from '../../../src/demo/index.ts';
import { createRunFixture, type RunFixture } from '../run/run-fixture.ts';
import { startServe, type ServeProcess } from './serve-fixture.ts';

interface Run {
  id: string;
  state: string;
  error: string | null;
  steps: { name: string; state: string }[];
}

describe('cancel a patch run', { timeout: 600_000 }, () => {
  let f: RunFixture;
  let serve: ServeProcess;
  let standbyDisk: string;
  before(async () => {
    f = await createRunFixture();
    standbyDisk = f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc2'), disk: 'system' });
    // A marker only the standby's own system disk has: it must be back after every cancelled run.
    fs.writeFileSync(path.join(standbyDisk, 'root/standby-marker'), 'lc2 own disk');
    serve = await startServe(f.t.stateDir);
  });
  after(async () => {
    await serve?.stop();
    await f?.dispose();
  });

  /** The client load, stopped once (by the test, or on failure by the finally). */
  const startLoad = async () => {
    const load = await f.load(200);
    let stopped: Promise<ClientLoadReport> | undefined;
    return { stop: (): Promise<ClientLoadReport> => (stopped ??= load.stop()) };
  };
  const run = async (id: string): Promise<Run> =>
    (await serve.api<{ run: Run }>('GET', `/v1/runs/${id}`)).body.run;
  const start = async (patches: string[]): Promise<string> => {
    const res = await serve.api<{ run: Run }>('POST', '/v1/runs', { lc: 'lc1', patches, skipScan: true });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.run.id;
  };
  /** Polls the run's stored events until `match` finds one. */
  const waitEvent = async (
    id: string,
    match: (e: { type: string; data: Record<string, unknown> }) => boolean,
    timeoutMs = 120_000,
  ) =>
    waitFor(async () => (await serve.events()).find((e) => e.runId === id && match(e)), {
      timeoutMs,
      intervalMs: 50,
    });

  /** What a cancelled run must leave: LC1 serving 1.0.0, the standby idle and stopped with its own disk, nothing else. */
  async function assertNothingLeft(id: string): Promise<void> {
    const now = await f.get('/version');
    assert.equal(now.servedBy, 'lc1');
    assert.equal(now.version, '1.0.0');
    assert.equal(getLc(f.t.app.db, 'lc1').role, 'active');
    assert.equal(getLc(f.t.app.db, 'lc2').role, 'idle');
    assert.equal((await f.t.host.driver.status('lc2')).state, 'stopped');
    assert.equal(fs.readFileSync(path.join(standbyDisk, 'root/standby-marker'), 'utf8'), 'lc2 own disk');
    assert.ok(
      !fs.existsSync(path.join(standbyDisk, standbyPaths.patches.slice(1))),
      'no patch files on the standby',
    );
    for (const dir of [
      path.dirname(standbyDisk),
      path.dirname(f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc1'), disk: 'system' })),
    ]) {
      const left = fs
        .readdirSync(dir)
        .filter((n) => n.includes('.before-') || n.includes('.understudy-copy-'));
      assert.deepEqual(left, [], `nothing left in ${dir}`);
    }
    // No child of serve is left (btrfs send/receive, the standby's waits). The traffic sampler goes on
    // for 5 s after a run ended (its curl and cat come and go), so this waits for that to pass.
    // (tsx's esbuild service, which compiles the daemon's TypeScript, is the loader's, not the run's.)
    const childrenOfServe = async (): Promise<string> =>
      (
        await exec(['ps', '-o', 'pid=,args=', '--ppid', String(serve.proc.child.pid)], { okCodes: [0, 1] })
      ).stdout
        .split('\n')
        .filter((l) => l.trim() && !/esbuild --service/.test(l))
        .join('\n');
    const settled = await waitFor(async () => ((await childrenOfServe()) === '' ? true : undefined), {
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    assert.ok(settled, `children of serve: ${await childrenOfServe()}`);
    // The run's LC leases are given up.
    const db = openStore(statePaths(f.t.stateDir).database, allSchemas);
    try {
      const leases = db.prepare("SELECT resource FROM leases WHERE resource IN ('lc:lc1', 'lc:lc2')").all();
      assert.deepEqual(leases, []);
    } finally {
      db.close();
    }
    const events = (await serve.events()).filter((e) => e.runId === id && e.type === 'run.state');
    assert.deepEqual(
      events.slice(-2).map((e) => e.data.state),
      ['cancelling', 'cancelled'],
    );
  }

  test('during the copy of the system disk: send/receive stopped, the partial copy removed, LC1 never noticed', async () => {
    await f.addVersionPatch();
    // 256 MiB that do not compress: the copy takes long enough to be cancelled half-way.
    const big = path.join(
      f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc1'), disk: 'system' }),
      'root/big',
    );
    const fd = fs.openSync(big, 'w');
    for (let i = 0; i < 64; i++) fs.writeSync(fd, crypto.randomBytes(4 * 1024 ** 2));
    fs.closeSync(fd);
    const load = await startLoad();
    try {
      const id = await start(['demo-1.0.1']);
      const copying = await waitEvent(
        id,
        (e) =>
          e.type === 'run.note' &&
          e.data.step === 'copy-system' &&
          Number((e.data.progress as { bytesDone?: number } | undefined)?.bytesDone ?? 0) > 0,
      );
      assert.ok(copying, 'the copy of the system disk started');
      const asked = Date.now();
      const cancel = await serve.api<{ run: Run }>('POST', `/v1/runs/${id}/cancel`, {});
      assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
      const ended = await waitEvent(
        id,
        (e) => e.type === 'run.state' && e.data.state === 'cancelled',
        60_000,
      );
      assert.ok(ended, 'the run ended cancelled');
      const tookMs = Date.now() - asked;
      const record = await run(id);
      assert.equal(record.state, 'cancelled');
      assert.match(record.error ?? '', /cancelled by an operator during copy-system/);
      const states = Object.fromEntries(record.steps.map((s) => [s.name, s.state]));
      assert.equal(states['copy-system'], 'undone', JSON.stringify(states));
      for (const later of ['copy-app', 'write-patches', 'boot-standby', 'switch'])
        assert.equal(states[later], 'pending');
      const db = openStore(statePaths(f.t.stateDir).database, allSchemas);
      try {
        assert.equal(getCopyJob(db, `${id}-system`).state, 'cancelled');
      } finally {
        db.close();
      }
      const report = await load.stop();
      assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
      assert.deepEqual(Object.keys(report.summary.byServedBy), ['lc1']);
      await assertNothingLeft(id);
      assert.ok(!fs.existsSync(path.join(standbyDisk, 'root/big')), 'the partial copy is gone');
      console.log(`# cancel during copy-system: cancelled ${tookMs} ms after it was asked for`);
    } finally {
      await load.stop().catch(() => undefined);
      fs.rmSync(big, { force: true });
    }
  });

  test('during the boot of the standby (its patch script still running): the standby is stopped; via understudy --api run cancel', async () => {
    await f.addPatch('slow-boot', 'script', '#!/bin/sh\nsleep 60\n');
    const load = await startLoad();
    try {
      const id = await start(['slow-boot']);
      const booting = await waitEvent(
        id,
        (e) => e.type === 'run.step' && e.data.step === 'boot-standby' && e.data.state === 'running',
      );
      assert.ok(booting, 'the standby is booting');
      // Let the standby run its patch script (a 60 s sleep) for a moment.
      await waitFor(
        async () => ((await f.t.host.driver.status('lc2')).state === 'running' ? true : undefined),
        {
          timeoutMs: 30_000,
          intervalMs: 100,
        },
      );
      await new Promise((r) => setTimeout(r, 1000));
      const out = await f.t.cli(['--api', serve.base, 'run', 'cancel', id]);
      assert.match(out.stdout, /cancelling/);
      const asked = Date.now(); // the daemon accepted the cancel by now
      const ended = await waitEvent(
        id,
        (e) => e.type === 'run.state' && e.data.state === 'cancelled',
        60_000,
      );
      assert.ok(ended, 'the run ended cancelled');
      const tookMs = Date.now() - asked;
      assert.ok(tookMs < 10_000, `cancelled in ${tookMs} ms, long before the patch script's 60 s ended`);
      const record = await run(id);
      assert.equal(record.state, 'cancelled');
      const states = Object.fromEntries(record.steps.map((s) => [s.name, s.state]));
      assert.equal(states['boot-standby'], 'undone', JSON.stringify(states));
      assert.equal(states['copy-system'], 'undone');
      assert.equal(states['reboot-standby'], 'pending');
      const report = await load.stop();
      assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
      assert.deepEqual(Object.keys(report.summary.byServedBy), ['lc1']);
      await assertNothingLeft(id);
      // The patch was never applied anywhere.
      assert.equal(f.catalogue.lcStates({ patch: 'slow-boot', lc: 'lc1' })[0]?.appliedAt ?? null, null);
      console.log(`# cancel during boot-standby: cancelled ${tookMs} ms after it was asked for`);
      // Cancelling a finished run is refused.
      const again = await serve.api<{ code: string; message: string }>('POST', `/v1/runs/${id}/cancel`, {});
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'RUN_NOT_CANCELLABLE');
      assert.match(again.body.message, /it is cancelled/);
    } finally {
      await load.stop().catch(() => undefined);
    }
  });

  test('after the point of no return (the switch started) cancel is refused and the run rolls forward', async () => {
    f.catalogue.markNextRun('slow-boot', 'lc1', false);
    const load = await startLoad();
    try {
      const id = await start(['demo-1.0.1']);
      const switching = await waitEvent(
        id,
        (e) => e.type === 'run.step' && e.data.step === 'switch' && e.data.state === 'running',
      );
      assert.ok(switching, 'the switch started');
      const refused = await serve.api<{ code: string; message: string; hint: string }>(
        'POST',
        `/v1/runs/${id}/cancel`,
        {},
      );
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'RUN_NOT_CANCELLABLE');
      assert.match(refused.body.message, /point of no return|it is switched/);
      assert.match(refused.body.hint, /rollback/);
      const ended = await waitEvent(
        id,
        (e) => e.type === 'run.state' && ['switched', 'failed'].includes(String(e.data.state)),
        120_000,
      );
      assert.equal(ended?.data.state, 'switched');
      const report = await load.stop();
      assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
      const now = await f.get('/version');
      assert.equal(now.servedBy, 'lc2');
      assert.equal(now.version, '1.0.1');
    } finally {
      await load.stop().catch(() => undefined);
    }
  });
});
