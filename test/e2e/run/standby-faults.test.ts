/**
 * Faults on the standby during a run, each ending with the service on LC1 (no failed request under
 * load), the standby's own disks back and nothing left of the run's copies on its pool:
 * - its pool fills up during the copy, and during the patch (a small pool, filled by the test);
 * - its init crashes while the patches are applied: the run notices within seconds, not at its timeout.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { UnderstudyError, exec } from '../../../src/core/index.ts';
import { listSyncBases } from '../../../src/disk-copy/index.ts';
import { getPool } from '../../../src/host/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { getRun, listRuns, startRun, type RunDeps, type RunOptions } from '../../../src/run/index.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

/** Writes a file on the filesystem of `dir` until it has less than `leaveBytes` free (0: until ENOSPC). */
function fill(dir: string, leaveBytes = 0): string {
  const filler = path.join(dir, `filler-${process.pid}`);
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(4 * 1024 * 1024, 0x5a);
  try {
    for (;;) {
      const stat = fs.statfsSync(dir);
      const free = stat.bavail * stat.bsize;
      if (leaveBytes > 0 && free <= leaveBytes) break;
      const n = leaveBytes > 0 ? Math.min(chunk.length, free - leaveBytes) : chunk.length;
      fs.writeSync(fd, chunk, 0, Math.max(4096, n));
      fs.fsyncSync(fd);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

describe('faults on the standby', () => {
  let f: RunFixture;
  let pool: string;
  let filler: string | undefined;
  const subvolumes = async (): Promise<string[]> =>
    (await exec(['btrfs', 'subvolume', 'list', '-o', pool])).stdout
      .split('\n')
      .map((l) => l.replace(/^.* path /, ''))
      .filter(Boolean)
      .sort();
  let baseline: string[];

  before(async () => {
    f = await createRunFixture({ standbyPool: { sizeBytes: 1024 ** 3 } });
    pool = getPool(f.t.app.db, 'standby').mountpoint;
    fs.writeFileSync(
      path.join(
        f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc2'), disk: 'system' }),
        'root/standby-marker',
      ),
      'lc2 own disk',
    );
    baseline = await subvolumes();
  });
  after(async () => {
    if (filler) fs.rmSync(filler, { force: true });
    await f?.dispose();
  });
  afterEach(() => {
    if (filler) fs.rmSync(filler, { force: true });
    filler = undefined;
    for (const p of f.catalogue.patchesForNextRun('lc1')) f.catalogue.markNextRun(p.name, 'lc1', false);
  });

  /** Runs with `deps`, expects `code` and a service that stayed on LC1; resolves with the error. */
  async function expectFailure(
    deps: RunDeps,
    options: Partial<RunOptions>,
    code: string,
  ): Promise<UnderstudyError> {
    const load = await f.load(100);
    const started = performance.now();
    const error = await startRun({ lc: 'lc1', skipScan: true, ...options }, deps).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsedMs = performance.now() - started;
    const report = await load.stop();
    assert.ok(error instanceof UnderstudyError, `expected ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.hint.length > 0);
    assert.equal(report.summary.failed, 0, 'the service kept answering');
    assert.deepEqual(Object.keys(report.summary.byServedBy), ['lc1'], 'only lc1 served');
    assert.equal((await f.get('/version')).servedBy, 'lc1');
    assert.equal(getRun(f.t.app.db, listRuns(f.t.app.db)[0]?.id ?? '').state, 'failed');
    const standbyDisk = f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc2'), disk: 'system' });
    assert.equal(fs.readFileSync(path.join(standbyDisk, 'root/standby-marker'), 'utf8'), 'lc2 own disk');
    // Nothing of the run is left on the pool but the sync bases the disk store records for the pair
    // (the copy's last snapshots, kept for later incremental syncs between the two disks).
    const kept = listSyncBases(f.t.app.db)
      .flatMap((b) => [b.baseA, b.baseB])
      .filter((p) => p.startsWith(`${pool}/`))
      .map((p) => path.relative(pool, p));
    assert.ok(kept.every((p) => p.includes('/.understudy-sync/')));
    assert.deepEqual(
      await subvolumes(),
      [...new Set([...baseline, ...kept])].sort(),
      'no partial copy, copy snapshot or set-aside disk is left on the pool',
    );
    (error as UnderstudyError & { elapsedMs?: number }).elapsedMs = elapsedMs;
    return error;
  }

  test("fault: the standby's pool is full during the copy: RUN_STANDBY_DISK_FULL, partial copies removed, LC1 serves", async () => {
    await f.addVersionPatch();
    filler = fill(pool);
    const error = await expectFailure(f.deps, {}, 'RUN_STANDBY_DISK_FULL');
    assert.match(error.message, /The standby "lc2" ran out of space on its system disk \(pool "standby"/);
    assert.match(error.message, /while lc1's system disk was copied onto it/);
    const run = getRun(f.t.app.db, listRuns(f.t.app.db)[0]?.id ?? '');
    assert.equal(run.steps.find((s) => s.name === 'copy-system')?.state, 'undone');
  });

  test("fault: the standby's pool fills up during the patch: RUN_STANDBY_DISK_FULL, the standby discarded, LC1 serves", async () => {
    await f.addPatch('big', 'script', '#!/bin/sh\ndd if=/dev/urandom of=/var/tmp/big bs=1M count=96\n');
    const deps: RunDeps = {
      ...f.deps,
      crashPoint: (point, when) => {
        if (point === 'boot-standby' && when === 'before') filler = fill(pool, 24 * 1024 * 1024);
      },
    };
    const error = await expectFailure(deps, { bootTimeoutMs: 60_000 }, 'RUN_STANDBY_DISK_FULL');
    assert.match(
      error.message,
      /ran out of space on its system disk \(pool "standby".*while the patches were applied: 1 patch\(es\) failed on the standby: big/,
    );
    assert.equal(f.catalogue.lcStates({ patch: 'big', lc: 'lc1' })[0]?.lastResult, 'failed');
  });

  test("fault: the standby's init crashes during the patch: noticed within seconds, the standby discarded, LC1 serves", async () => {
    await f.addPatch('slow', 'script', '#!/bin/sh\nsleep 60\n');
    let killedAt = 0;
    let failedAt = 0;
    const deps: RunDeps = {
      ...f.deps,
      onEvent: (e) => {
        if (e.step === 'boot-standby' && e.state === 'failed') failedAt = performance.now();
      },
      crashPoint: (point, when) => {
        if (point !== 'boot-standby' || when !== 'before') return;
        // Two seconds into the standby's start-up (its patch script sleeps for a minute there), its
        // init dies as a crash would.
        void (async () => {
          for (let i = 0; i < 600; i++) {
            const status = await f.t.host.driver.status('lc2');
            if (status.state === 'booting' && status.initPid) {
              await new Promise((r) => setTimeout(r, 2000));
              const still = await f.t.host.driver.status('lc2');
              if (still.state !== 'booting' || still.initPid !== status.initPid) return;
              process.kill(status.initPid, 'SIGKILL');
              killedAt = performance.now();
              return;
            }
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
      },
    };
    const error = await expectFailure(deps, { bootTimeoutMs: 120_000 }, 'RUN_STANDBY_BOOT_FAILED');
    assert.ok(killedAt > 0, 'the init was killed while patching');
    assert.match(error.message, /The standby "lc2" went crashed while patching/);
    // boot-standby polls the standby every 100 ms: the crash is seen at once, not at the 120 s timeout.
    assert.ok(
      failedAt - killedAt < 5000,
      `the crash was noticed after ${Math.round(failedAt - killedAt)} ms`,
    );
  });
});
