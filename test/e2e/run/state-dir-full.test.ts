/**
 * Fault: the manager's state directory fills up during a run. The state directory sits on a small
 * ext4 filesystem of its own (the pools on their own loop devices); after the copies the test fills it.
 * SQLite cannot write the journal (SQLITE_FULL): the run stops with STATE_DIR_FULL naming the
 * directory and what to do, LC1 keeps serving, the store passes its integrity check, and once space is
 * freed `resumeRun` finishes the run with every acknowledged write on the patched LC.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UnderstudyError, exec } from '../../../src/core/index.ts';
import { getRun, listRuns, resumeRun, startRun } from '../../../src/run/index.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

/** Fills the filesystem holding `dir` until a write fails with ENOSPC; resolves with the filler's path. */
function fill(dir: string): string {
  const filler = path.join(dir, 'filler');
  const free = fs.statfsSync(dir).bavail * fs.statfsSync(dir).bsize;
  const fd = fs.openSync(filler, 'w');
  try {
    if (free > 1024 * 1024) fs.writeSync(fd, Buffer.alloc(free - 1024 * 1024));
    const chunk = Buffer.alloc(4096);
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

describe('fault: the state directory is full', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-statefull-'));
  const stateDir = path.join(base, 'state');
  const loops: string[] = [];
  let f: RunFixture | undefined;

  async function loopDevice(name: string, bytes: number): Promise<string> {
    const image = path.join(base, `${name}.img`);
    fs.writeFileSync(image, '');
    fs.truncateSync(image, bytes);
    const device = (await exec(['losetup', '--find', '--show', image])).stdout.trim();
    loops.push(device);
    return device;
  }

  before(async () => {
    fs.mkdirSync(stateDir);
    const small = await loopDevice('state', 96 * 1024 ** 2);
    await exec(['mkfs.ext4', '-q', '-m', '0', '-F', small]);
    await exec(['mount', small, stateDir]);
    f = await createRunFixture({
      host: { stateDir, poolDevice: await loopDevice('main', 3 * 1024 ** 3) },
      standbyPool: { device: await loopDevice('standby', 2 * 1024 ** 3) },
    });
  });
  after(async () => {
    fs.rmSync(path.join(stateDir, 'filler'), { force: true });
    await f?.dispose();
    await exec(['umount', stateDir], { okCodes: [0, 32] });
    for (const loop of loops) await exec(['losetup', '-d', loop], { okCodes: [0, 1] });
    fs.rmSync(base, { recursive: true, force: true });
  });

  test('fault: the state directory fills up during a run: STATE_DIR_FULL, LC1 serves, the store is intact, the run resumes once space is freed', async () => {
    const fx = f as RunFixture;
    await fx.addVersionPatch();
    assert.equal(await fx.put('/kv/before', 'written before the run'), 200);
    let filler: string | undefined;
    const load = await fx.load(100);
    const error = await startRun(
      { lc: 'lc1', skipScan: true },
      {
        ...fx.deps,
        crashPoint: (point, when) => {
          if (point === 'write-patches' && when === 'before') filler = fill(stateDir);
        },
      },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    const during = await load.stop();
    assert.ok(filler, 'the state directory was filled');
    assert.ok(error instanceof UnderstudyError, `expected STATE_DIR_FULL, got ${String(error)}`);
    assert.equal(error.code, 'STATE_DIR_FULL', error.message);
    const [run] = listRuns(fx.t.app.db);
    assert.ok(run);
    assert.match(
      error.message,
      new RegExp(`state directory ${stateDir} is full: run ${run.id} cannot record`),
    );
    assert.match(error.hint, new RegExp(`df -h ${stateDir}.*understudy run resume ${run.id}`));
    assert.equal(during.summary.failed, 0, 'the service kept answering');
    assert.deepEqual(Object.keys(during.summary.byServedBy), ['lc1']);
    assert.equal((await fx.get('/version')).servedBy, 'lc1');
    assert.equal((await fx.t.host.driver.status('lc1')).state, 'running');
    // The journal is intact and ends where the run stopped.
    assert.deepEqual(fx.t.app.db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
    assert.equal(run.state, 'running');
    assert.deepEqual(
      run.steps.map((s) => s.state),
      [
        'done',
        'done',
        'done',
        'done',
        'done',
        'pending',
        'pending',
        'pending',
        'pending',
        'pending',
        'pending',
        'pending',
      ],
    );
    assert.equal(await fx.put('/kv/during', 'written while the state dir was full'), 200);

    fs.rmSync(filler as string);
    const resumed = await resumeRun(run.id, fx.deps);
    assert.equal(resumed.state, 'switched', resumed.error ?? '');
    assert.equal(
      getRun(fx.t.app.db, run.id).steps.every((s) => s.state === 'done'),
      true,
    );
    const now = await fx.get('/version');
    assert.equal(now.servedBy, 'lc2');
    assert.equal(now.version, '1.0.1');
    assert.equal((await fx.get('/kv/before')).body, 'written before the run');
    assert.equal((await fx.get('/kv/during')).body, 'written while the state dir was full');
  });
});
