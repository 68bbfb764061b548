/**
 * The live disk copy against real btrfs pools on loop devices, with a real writer process frozen by a
 * real cgroup freezer: the copy equals the source at the cut in every run, the write history is
 * recorded and stored, cancel and a too-small pool leave nothing behind, same-pool mode snapshots.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { exec, isUnderstudyError, spawnProcess } from '../../../src/core/index.ts';
import {
  copyDisk,
  diskCopySchema,
  getCopyJob,
  hashTree,
  listCopyHistory,
  listCopyJobs,
  recoverCopyJobs,
  type CopyPhase,
} from '../../../src/disk-copy/index.ts';
import { openStore, type Db } from '../../../src/store/index.ts';
import { createPool, createSubvolume, fillTree, startWriter, tag, type Pool } from './fixtures.ts';
import { assertNoLeftovers, assertSameTree, deleteSubvolumes, exists, recordingFreezer } from './helpers.ts';

void describe('disk copy (btrfs pools on loop devices)', () => {
  let poolA: Pool;
  let poolB: Pool;
  let db: Db;
  let dbDir: string;

  before(async () => {
    poolA = await createPool(2048, 'a');
    poolB = await createPool(2048, 'b');
    dbDir = await fs.mkdtemp(path.join(os.tmpdir(), `us-dc-db-${tag()}-`));
    db = openStore(path.join(dbDir, 'store.db'), [diskCopySchema]);
  });
  after(async () => {
    db?.close();
    await poolA?.cleanup();
    await poolB?.cleanup();
    if (dbDir) await fs.rm(dbDir, { recursive: true, force: true });
  });

  void it('copies a disk across pools while the LC writes; the copy equals the source at the cut in every run', async (t) => {
    const source = path.join(poolA.path, `disk1-${tag()}`);
    await createSubvolume(source);
    await fillTree(source, { largeMb: 64 });
    const writer = await startWriter({ dir: source, bigMb: 1, pauseSeconds: 0.01 });
    const cuts: string[] = [];
    t.after(async () => {
      await writer.stop();
      await deleteSubvolumes(cuts);
    });
    for (let run = 0; run < 3; run += 1) {
      const freezer = recordingFreezer(writer.cgroup.freezer, source, poolA.path);
      const phases: CopyPhase[] = [];
      let fullWithBytes = 0;
      const result = await copyDisk({
        source,
        destination: { poolPath: poolB.path, name: `disk3-${run}` },
        freezer,
        verify: true,
        db,
        label: `run ${run}`,
        onProgress: (e) => {
          if (phases.at(-1) !== e.phase) phases.push(e.phase);
          if (e.phase === 'full' && e.bytesDone > 0) fullWithBytes += 1;
        },
      });
      cuts.push(...freezer.snapshots);
      // Bytes while send runs (read every 20 ms until the first), not only the count at the pass's end:
      // the patch run's copy-<disk>:during crash point waits for such a report.
      assert.ok(fullWithBytes >= 2, `the full pass reported bytes ${fullWithBytes} time(s)`);
      assert.equal(result.mode, 'send-receive');
      assert.equal(freezer.freezes, 1, 'frozen exactly once, for the cut');
      assert.equal(freezer.thaws, 1);
      const digest = await assertSameTree(freezer.snapshots[0] ?? '', result.destination);
      assert.equal(result.verification?.digest, digest);
      assert.ok(result.freezeMs > 0 && result.freezeMs < 2000, `freeze took ${result.freezeMs} ms`);
      assert.deepEqual(
        phases.filter((p) => p !== 'catch-up'),
        ['preparing', 'full', 'cut', 'final', 'verifying', 'done'],
      );
      assert.ok(result.passes.length >= 3, 'full + catch-up + final');

      // The history saw the writer's kinds of writes, and the store holds it.
      const ops = new Set(result.records.map((r) => r.op));
      for (const op of ['write', 'create', 'rename', 'unlink'] as const)
        assert.ok(ops.has(op), `history has ${op}: ${[...ops].join(',')}`);
      assert.ok(result.records.some((r) => r.op === 'write' && r.path === 'w/append.log'));
      assert.ok(result.history.writes > 0 && result.history.bytes > 0 && result.history.files > 0);
      assert.match(result.history.text, /writes? to \d+ files?, .* replayed in \d+ passes?/);
      const job = getCopyJob(db, result.jobId);
      assert.equal(job.state, 'succeeded');
      assert.equal(job.history.writes, result.history.writes);
      assert.equal(listCopyHistory(db, result.jobId).length, result.records.length);

      // The destination is a writable subvolume; the source is untouched and writable; nothing is left over.
      const ro = await exec(['btrfs', 'property', 'get', '-ts', result.destination, 'ro']);
      assert.equal(ro.stdout.trim(), 'ro=false');
      await fs.writeFile(path.join(result.destination, 'written-after-copy'), 'ok');
      assert.equal((await exec(['btrfs', 'property', 'get', '-ts', source, 'ro'])).stdout.trim(), 'ro=false');
      await assertNoLeftovers([poolA.path, poolB.path]);
    }
    assert.equal(
      (
        await fs
          .readFile(path.join(writer.cgroup.procsFiles[0] ?? '', '..', 'freezer.state'), 'utf8')
          .catch(() => 'THAWED')
      ).trim(),
      'THAWED',
    );
  });

  void it('ownTree: the copy is a tree of its own (received whole, then synced by transid), equal at the cut, with its history', async (t) => {
    const source = path.join(poolA.path, `disk-own-${tag()}`);
    await createSubvolume(source);
    await fillTree(source, { largeMb: 64 });
    const writer = await startWriter({ dir: source, bigMb: 1, pauseSeconds: 0.01 });
    const cuts: string[] = [];
    t.after(async () => {
      await writer.stop();
      await deleteSubvolumes(cuts);
    });
    for (let run = 0; run < 2; run += 1) {
      const freezer = recordingFreezer(writer.cgroup.freezer, source, poolA.path);
      const result = await copyDisk({
        source,
        destination: { poolPath: poolB.path, name: `disk-own-${run}` },
        freezer,
        verify: true,
        ownTree: true,
        db,
      });
      cuts.push(...freezer.snapshots);
      assert.equal(freezer.freezes, 1, 'frozen exactly once, for the cut');
      const digest = await assertSameTree(freezer.snapshots[0] ?? '', result.destination);
      assert.equal(result.verification?.digest, digest);
      assert.ok(result.passes.length >= 3, `full + catch-up + final: ${result.passes.length}`);
      assert.equal(result.syncBase, undefined, 'the bases are transactions, kept only by a store');
      // Never a snapshot of anything: no parent, not received.
      const show = (await exec(['btrfs', 'subvolume', 'show', result.destination])).stdout;
      assert.match(show, /Parent UUID:\s+-\n/);
      assert.match(show, /Received UUID:\s+-\n/);
      assert.equal(
        (await exec(['btrfs', 'property', 'get', '-ts', result.destination, 'ro'])).stdout.trim(),
        'ro=false',
      );
      // The history comes from the passes' searches: the writer's writes and creations.
      const ops = new Set(result.records.map((r) => r.op));
      for (const op of ['write', 'create'] as const)
        assert.ok(ops.has(op), `history has ${op}: ${[...ops].join(',')}`);
      assert.ok(result.records.some((r) => r.op === 'write' && r.path === 'w/append.log'));
      assert.equal(listCopyHistory(db, result.jobId).length, result.records.length);
      await assertNoLeftovers([poolA.path, poolB.path]);
    }
  });

  void it('cancelling at any phase leaves the source untouched and removes the partial copy', async (t) => {
    const source = path.join(poolA.path, `disk2-${tag()}`);
    await createSubvolume(source);
    await fillTree(source, { largeMb: 150, smallFiles: 50 });
    const before = await hashTree(source);
    const cases = [
      ...(['full', 'catch-up', 'cut', 'final', 'verifying'] as const).map((phase) => ({
        phase,
        ownTree: false,
      })),
      // A tree of its own is in the destination's place from the end of the full pass on.
      ...(['catch-up', 'final', 'verifying'] as const).map((phase) => ({ phase, ownTree: true })),
    ];
    for (const { phase: target, ownTree } of cases) {
      const controller = new AbortController();
      const freezer = {
        freezes: 0,
        thaws: 0,
        async freeze() {
          this.freezes += 1;
        },
        async thaw() {
          this.thaws += 1;
        },
      };
      const name = `cancelled-${target}${ownTree ? '-own' : ''}`;
      await assert.rejects(
        copyDisk({
          source,
          destination: { poolPath: poolB.path, name },
          freezer,
          verify: true,
          ownTree,
          db,
          signal: controller.signal,
          onProgress: (e) => {
            if (e.phase === target && (target !== 'full' || e.bytesDone > 0)) controller.abort();
          },
        }),
        (error: { code?: string; message?: string }) => {
          assert.equal(error.code, 'DISK_COPY_CANCELLED', `${target}: ${error.message}`);
          return true;
        },
      );
      assert.equal(freezer.freezes, freezer.thaws, `${target}: every freeze was thawed`);
      assert.equal(
        await exists(path.join(poolB.path, name)),
        false,
        `${target}: partial destination removed`,
      );
      await assertNoLeftovers([poolA.path, poolB.path]);
    }
    t.diagnostic(
      'cancelled in phases full, catch-up, cut, final, verifying; with ownTree catch-up, final, verifying',
    );
    assert.equal((await hashTree(source)).digest, before.digest, 'source untouched');
    const cancelled = db.prepare("SELECT COUNT(*) AS n FROM copy_jobs WHERE state = 'cancelled'").get() as {
      n: number;
    };
    assert.ok(cancelled.n >= 5);
  });

  void it('aborts cleanly when the destination pool is too small, naming the pool and the space missing', async (t) => {
    const small = await createPool(256, 'small');
    t.after(() => small.cleanup());
    const source = path.join(poolA.path, `disk3-${tag()}`);
    await createSubvolume(source);
    await fillTree(source, { largeMb: 300, smallFiles: 20 });
    const freezer = { async freeze() {}, async thaw() {} };
    await assert.rejects(
      copyDisk({ source, destination: { poolPath: small.path, name: 'too-big' }, freezer }),
      (error: { code?: string; message?: string; details?: Record<string, unknown> }) => {
        assert.equal(error.code, 'POOL_FULL');
        assert.ok(error.message?.includes(small.path), error.message);
        assert.match(error.message ?? '', /MiB missing/);
        assert.ok(Number(error.details?.missingBytes) > 0);
        return true;
      },
    );
    assert.equal(await exists(path.join(small.path, 'too-big')), false);
    await assertNoLeftovers([poolA.path, small.path]);
    assert.ok(await exists(path.join(source, 'var', 'lib', 'app', 'large.bin')), 'source untouched');
  });

  void it('makes an instant copy-on-write snapshot on the same pool (mirror split), equal at the cut', async (t) => {
    const source = path.join(poolA.path, `disk4-${tag()}`);
    await createSubvolume(source);
    await fillTree(source, { largeMb: 32 });
    const writer = await startWriter({ dir: source, bigMb: 1, pauseSeconds: 0.01 });
    const freezer = recordingFreezer(writer.cgroup.freezer, source, poolA.path);
    t.after(async () => {
      await writer.stop();
      await deleteSubvolumes(freezer.snapshots);
    });
    const result = await copyDisk({
      source,
      destination: { poolPath: poolA.path, name: `disk4-copy-${tag()}` },
      freezer,
      verify: true,
    });
    assert.equal(result.mode, 'snapshot');
    assert.equal(result.convergence, 'instant');
    // Verified by the kernel's comparison of the clone with the cut: no file was read for it.
    assert.equal(result.verification?.method, 'clone-diff');
    assert.equal(result.verification.bytes, 0);
    await assertSameTree(freezer.snapshots[0] ?? '', result.destination);
    assert.equal(
      (await exec(['btrfs', 'property', 'get', '-ts', result.destination, 'ro'])).stdout.trim(),
      'ro=false',
    );
    await assertNoLeftovers([poolA.path]);
  });

  void it('same pool: a clone changed before its verification fails DISK_COPY_VERIFY_FAILED naming the path; nothing is left', async (t) => {
    const source = path.join(poolA.path, `disk5-${tag()}`);
    await createSubvolume(source);
    await fillTree(source, { largeMb: 1 });
    const writer = await startWriter({ dir: source, bigMb: 1, pauseSeconds: 0.05 });
    const freezer = recordingFreezer(writer.cgroup.freezer, source, poolA.path);
    t.after(async () => {
      await writer.stop();
      await deleteSubvolumes(freezer.snapshots);
    });
    const destination = path.join(poolA.path, `disk5-copy-${tag()}`);
    await assert.rejects(
      copyDisk({
        source,
        destination: { poolPath: poolA.path, name: path.basename(destination) },
        freezer,
        verify: true,
        // Someone writes the clone between the cut and its verification.
        onProgress: (e) => {
          if (e.phase === 'verifying') writeFileSync(path.join(destination, 'stray'), 'not at the cut');
        },
      }),
      (error: unknown) =>
        isUnderstudyError(error, 'DISK_COPY_VERIFY_FAILED') &&
        /differing paths: (\., )?stray$/.test(error.message),
    );
    assert.equal(await exists(destination), false, 'the copy is removed');
    await assertNoLeftovers([poolA.path]);
  });

  void it('when the writer outpaces the copy, does what the policy says: throttle, long freeze, or fail', async (t) => {
    const source = path.join(poolA.path, `disk5-${tag()}`);
    await createSubvolume(source);
    await fillTree(source, { largeMb: 16, smallFiles: 20 });
    const writer = await startWriter({ dir: source, bigMb: 2, pauseSeconds: 0 });
    const cuts: string[] = [];
    t.after(async () => {
      await writer.stop();
      await deleteSubvolumes(cuts);
    });
    const realThrottle = writer.cgroup.throttle(poolA.device);
    const calls: string[] = [];
    const throttle = {
      async limit(bps: number) {
        calls.push(`limit ${bps}`);
        await realThrottle.limit(bps);
      },
      async lift() {
        calls.push('lift');
        await realThrottle.lift();
      },
    };
    // cutBelowBytes 0: any write during a pass counts as not converged.
    const policy = { maxPasses: 1, cutBelowBytes: 0, throttleBytesPerSecond: 2 * 1024 * 1024 };

    const throttled = recordingFreezer(writer.cgroup.freezer, source, poolA.path);
    const r1 = await copyDisk({
      source,
      destination: { poolPath: poolB.path, name: `t-${tag()}` },
      freezer: throttled,
      throttle,
      policy: { ...policy, onNoConvergence: 'throttle' },
    });
    cuts.push(...throttled.snapshots);
    assert.deepEqual(calls, [`limit ${2 * 1024 * 1024}`, 'lift']);
    assert.ok(r1.convergence === 'throttled' || r1.convergence === 'long-freeze', r1.convergence);
    assert.ok(r1.throttledMs > 0);
    await assertSameTree(throttled.snapshots[0] ?? '', r1.destination);

    const long = recordingFreezer(writer.cgroup.freezer, source, poolA.path);
    const r2 = await copyDisk({
      source,
      destination: { poolPath: poolB.path, name: `l-${tag()}` },
      freezer: long,
      policy: { ...policy, onNoConvergence: 'long-freeze' },
    });
    cuts.push(...long.snapshots);
    assert.equal(r2.convergence, 'long-freeze');
    const finalPass = r2.passes.at(-1);
    assert.ok(finalPass && r2.freezeMs >= finalPass.durationMs, 'frozen through the final pass');
    await assertSameTree(long.snapshots[0] ?? '', r2.destination);

    const name = `f-${tag()}`;
    await assert.rejects(
      copyDisk({
        source,
        destination: { poolPath: poolB.path, name },
        freezer: writer.cgroup.freezer,
        policy: { ...policy, onNoConvergence: 'fail' },
      }),
      {
        code: 'DISK_COPY_NOT_CONVERGED',
      },
    );
    assert.equal(await exists(path.join(poolB.path, name)), false);
    await assertNoLeftovers([poolA.path, poolB.path]);
    t.diagnostic(
      `throttle run: ${r1.convergence}, throttled ${Math.round(r1.throttledMs)} ms, frozen ${r1.freezeMs.toFixed(1)} ms; long-freeze run frozen ${r2.freezeMs.toFixed(1)} ms`,
    );
  });
  for (const ownTree of [false, true])
    void it(`after a crash of the manager mid-copy${ownTree ? ' (ownTree, its destination in place)' : ''}, recovery removes the leftovers and marks the job failed`, async (t) => {
      const source = path.join(poolA.path, `disk6-${tag()}`);
      await createSubvolume(source);
      await fillTree(source, { largeMb: 200, smallFiles: 20 });
      const name = `crashed-${tag()}`;
      const child = spawnProcess(
        [
          'node',
          '--import',
          'tsx',
          path.join(import.meta.dirname, 'copy-child.ts'),
          JSON.stringify({
            source,
            poolPath: poolB.path,
            name,
            dbFile: path.join(dbDir, 'store.db'),
            // A tree of its own is in the destination's place once the full pass is received.
            ...(ownTree ? { ownTree, stallAt: 'catch-up' } : {}),
          }),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const orphans: number[] = [];
      t.after(() => {
        for (const pid of [child.child.pid ?? 0, ...orphans]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      });
      // Kill the manager once the full pass is streaming; its btrfs send/receive children are killed too.
      await new Promise<void>((resolve, reject) => {
        let buffered = '';
        child.child.stdout?.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          const at = ownTree
            ? (l: string): boolean => /"phase":"catch-up"/.test(l)
            : (l: string): boolean => /"phase":"full"/.test(l) && !/"bytesDone":0,/.test(l);
          if (lines.some(at)) resolve();
        });
        void child.done.then(() => reject(new Error('the copy ended before it could be killed')));
      });
      const childPid = child.child.pid ?? 0;
      for (const task of await fs.readdir(`/proc/${childPid}/task`)) {
        const kids = await fs.readFile(`/proc/${childPid}/task/${task}/children`, 'utf8').catch(() => '');
        orphans.push(...kids.split(' ').filter(Boolean).map(Number));
      }
      process.kill(childPid, 'SIGKILL');
      for (const pid of orphans) process.kill(pid, 'SIGKILL');
      await child.done;
      const running = listCopyJobs(db).filter(
        (j) => j.state === 'running' && j.destination === path.join(poolB.path, name),
      );
      assert.equal(running.length, 1, 'the killed copy is still marked running');
      assert.ok(
        (await fs.readdir(poolA.path)).some((n) => n.startsWith('.understudy-copy-')),
        'its snapshots are left behind',
      );

      if (ownTree) assert.ok(await exists(path.join(poolB.path, name)), 'the destination was in place');
      const recovered = await recoverCopyJobs(db);
      assert.deepEqual(recovered, [running[0]?.id]);
      assert.equal(getCopyJob(db, running[0]?.id ?? '').state, 'failed');
      assert.equal(await exists(path.join(poolB.path, name)), false);
      await assertNoLeftovers([poolA.path, poolB.path]);
    });
});
