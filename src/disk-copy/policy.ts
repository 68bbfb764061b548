/** The convergence rule of the copy: when to cut, when to throttle, when to give up. Pure logic. */
import { UnderstudyError } from '../core/index.ts';
import type { CopyPolicy, ResolvedCopyPolicy } from './types.ts';

const MiB = 1024 * 1024;

export function resolvePolicy(policy: CopyPolicy | undefined, hasThrottle: boolean): ResolvedCopyPolicy {
  const resolved: ResolvedCopyPolicy = {
    maxPasses: policy?.maxPasses ?? 5,
    cutBelowBytes: policy?.cutBelowBytes ?? 32 * MiB,
    onNoConvergence: policy?.onNoConvergence ?? (hasThrottle ? 'throttle' : 'long-freeze'),
  };
  if (policy?.throttleBytesPerSecond !== undefined)
    resolved.throttleBytesPerSecond = policy.throttleBytesPerSecond;
  if (policy?.freezeTimeoutMs !== undefined) resolved.freezeTimeoutMs = policy.freezeTimeoutMs;
  if (!Number.isInteger(resolved.maxPasses) || resolved.maxPasses < 1) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `policy.maxPasses must be a whole number >= 1 (got ${resolved.maxPasses})`,
    );
  }
  if (!(resolved.cutBelowBytes >= 0))
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `policy.cutBelowBytes must be >= 0 (got ${resolved.cutBelowBytes})`,
    );
  if (resolved.onNoConvergence === 'throttle' && !hasThrottle) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      'policy.onNoConvergence is "throttle" but no throttle was given',
      {
        hint: 'Pass a throttle (the driver\'s setWriteLimit bound to the LC), or choose "long-freeze" or "fail".',
      },
    );
  }
  return resolved;
}

export interface PassState {
  /** Stream bytes of the catch-up pass just done. */
  lastPassBytes: number;
  /** Catch-up passes done since the copy started, or since throttling began. */
  passesInPhase: number;
  throttled: boolean;
  /** Measured copy rate (stream bytes/s) of the passes so far. */
  copyBytesPerSecond: number;
}

/**
 * What to do after a catch-up pass:
 * - `cut`: the change is small, take the cut now;
 * - `again`: run another catch-up pass;
 * - `throttle`: limit the writers to `bytesPerSecond`, then keep catching up;
 * - `long-freeze`: cut and keep the writers frozen through the final pass;
 * - `fail`: give up (DISK_COPY_NOT_CONVERGED).
 */
export type NextStep =
  | { action: 'cut' }
  | { action: 'again' }
  | { action: 'throttle'; bytesPerSecond: number }
  | { action: 'long-freeze' }
  | { action: 'fail' };

export function decideNextStep(state: PassState, policy: ResolvedCopyPolicy): NextStep {
  if (state.lastPassBytes <= policy.cutBelowBytes) return { action: 'cut' };
  if (state.passesInPhase < policy.maxPasses) return { action: 'again' };
  if (policy.onNoConvergence === 'fail') return { action: 'fail' };
  if (policy.onNoConvergence === 'throttle' && !state.throttled) {
    const bytesPerSecond =
      policy.throttleBytesPerSecond ?? Math.max(MiB, Math.round(state.copyBytesPerSecond / 4));
    return { action: 'throttle', bytesPerSecond };
  }
  return { action: 'long-freeze' };
}
