import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { whileFrozen, type Freezer } from '../../../src/disk-copy/index.ts';

/** A freezer whose first `hangs` freeze calls never complete (a cgroup stuck in FREEZING). */
function fakeFreezer(hangs: number): Freezer & { log: string[] } {
  let calls = 0;
  const log: string[] = [];
  return {
    log,
    freeze() {
      calls += 1;
      log.push('freeze');
      return calls <= hangs ? new Promise<void>(() => undefined) : Promise.resolve();
    },
    async thaw() {
      log.push('thaw');
    },
  };
}

void describe('freezing for the cut', () => {
  void it('runs the step frozen and always thaws, also when the step fails', async () => {
    const freezer = fakeFreezer(0);
    const result = await whileFrozen(freezer, { what: 'disk' }, async () => {
      freezer.log.push('step');
      return 42;
    });
    assert.equal(result.value, 42);
    assert.equal(result.attempts, 1);
    assert.deepEqual(freezer.log, ['freeze', 'step', 'thaw']);
    const failing = fakeFreezer(0);
    await assert.rejects(
      whileFrozen(failing, { what: 'disk' }, () => Promise.reject(new Error('snapshot failed'))),
      /snapshot failed/,
    );
    assert.deepEqual(failing.log, ['freeze', 'thaw']);
  });

  void it('undoes a freeze that does not complete in time and tries again', async () => {
    const freezer = fakeFreezer(2);
    const result = await whileFrozen(freezer, { what: 'disk', timeoutMs: 30 }, async () => 'cut');
    assert.equal(result.attempts, 3);
    assert.deepEqual(freezer.log, ['freeze', 'thaw', 'freeze', 'thaw', 'freeze', 'thaw']);
    // Node's timers may fire up to a millisecond before performance.now() shows the full delay.
    assert.ok(result.frozenMs >= 2 * 29, `the failed attempts count as frozen time (${result.frozenMs} ms)`);
  });

  void it('gives up with DISK_COPY_FREEZE_FAILED, thawed, after the attempts', async () => {
    const freezer = fakeFreezer(99);
    await assert.rejects(
      whileFrozen(freezer, { what: '/pool/lcs/lc1/system', timeoutMs: 10, attempts: 3 }, async () => 'never'),
      (error: { code?: string; message?: string }) => {
        assert.equal(error.code, 'DISK_COPY_FREEZE_FAILED');
        assert.match(error.message ?? '', /lc1\/system/);
        return true;
      },
    );
    assert.equal(freezer.log.filter((l) => l === 'thaw').length, 3);
  });
});
