import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideNextStep, resolvePolicy } from '../../../src/disk-copy/index.ts';

const MiB = 1024 * 1024;

void describe('convergence policy', () => {
  void it('cuts as soon as a catch-up pass is small enough', () => {
    const policy = resolvePolicy({ cutBelowBytes: 8 * MiB }, false);
    assert.deepEqual(
      decideNextStep(
        { lastPassBytes: 8 * MiB, passesInPhase: 1, throttled: false, copyBytesPerSecond: 100 * MiB },
        policy,
      ),
      { action: 'cut' },
    );
    assert.deepEqual(
      decideNextStep(
        { lastPassBytes: 9 * MiB, passesInPhase: 1, throttled: false, copyBytesPerSecond: 100 * MiB },
        policy,
      ),
      { action: 'again' },
    );
  });

  void it('after maxPasses: throttles once (to a quarter of the copy rate), then falls back to a long freeze', () => {
    const policy = resolvePolicy({ maxPasses: 3, cutBelowBytes: MiB }, true);
    assert.equal(policy.onNoConvergence, 'throttle');
    const state = {
      lastPassBytes: 50 * MiB,
      passesInPhase: 3,
      throttled: false,
      copyBytesPerSecond: 200 * MiB,
    };
    assert.deepEqual(decideNextStep(state, policy), { action: 'throttle', bytesPerSecond: 50 * MiB });
    assert.deepEqual(decideNextStep({ ...state, throttled: true, passesInPhase: 2 }, policy), {
      action: 'again',
    });
    assert.deepEqual(decideNextStep({ ...state, throttled: true }, policy), { action: 'long-freeze' });
    assert.deepEqual(decideNextStep({ ...state, copyBytesPerSecond: 0 }, policy), {
      action: 'throttle',
      bytesPerSecond: MiB,
    });
  });

  void it('without a throttle defaults to a long freeze; "fail" gives up', () => {
    assert.equal(resolvePolicy(undefined, false).onNoConvergence, 'long-freeze');
    const state = { lastPassBytes: 50 * MiB, passesInPhase: 5, throttled: false, copyBytesPerSecond: 1 };
    assert.deepEqual(decideNextStep(state, resolvePolicy({ onNoConvergence: 'fail' }, false)), {
      action: 'fail',
    });
    assert.deepEqual(decideNextStep(state, resolvePolicy(undefined, false)), { action: 'long-freeze' });
  });

  void it('rejects a throttle policy without a throttle, and nonsense numbers', () => {
    assert.throws(() => resolvePolicy({ onNoConvergence: 'throttle' }, false), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => resolvePolicy({ maxPasses: 0 }, false), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => resolvePolicy({ cutBelowBytes: -1 }, false), { code: 'INVALID_ARGUMENT' });
  });
});
