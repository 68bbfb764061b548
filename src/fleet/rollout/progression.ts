/**
 * How a rollout moves: its waves (canary first, then waves no larger than the max concurrency),
 * and at any instant the one next thing to do, from the rollout's state, the work already made for
 * its targets and the clock. Pure; the control plane persists the result and acts on it.
 */
import { UnderstudyError } from '../../core/index.ts';
import { resolveAmount, type ResolvedRolloutSpec } from './spec.ts';
import { targetKey, type FleetTarget } from './selection.ts';
import { groupMayPatch, nextOpening } from './windows.ts';

/**
 * - awaiting-approval: made with `requireApproval`; nothing is dispatched until an administrator's
 *              authenticated mail reply approves its exact patch set (a rejection stops it)
 * - running:   waves are dispatched as windows, health and rate controls allow
 * - paused:    nothing new is dispatched; work already taken by agents finishes
 * - stopped:   ended by an operator; work not yet taken by an agent is cancelled
 * - halted:    ended because failures exceeded max errors; work not yet taken is cancelled
 * - completed: every wave finished and stayed healthy for the watch time
 */
export const rolloutStates = [
  'awaiting-approval',
  'running',
  'paused',
  'stopped',
  'halted',
  'completed',
] as const;
export type RolloutState = (typeof rolloutStates)[number];

/**
 * One target's work, as an agent moves it:
 * - queued:    made by the control plane, not yet taken
 * - claimed:   taken by the target's agent (never handed to anyone else)
 * - running:   the agent's local patch run started
 * - succeeded: patched and switched; the post-switch watch is green
 * - failed:    the run failed; the service stayed on (or went back to) the original LC
 * - reverted:  switched, then rolled back (unhealthy after the switch, or a wave rollback)
 * - cancelled: never taken; the rollout stopped or halted
 */
export const workStates = [
  'queued',
  'claimed',
  'running',
  'succeeded',
  'failed',
  'reverted',
  'cancelled',
] as const;
export type WorkState = (typeof workStates)[number];
export const terminalWorkStates: readonly WorkState[] = ['succeeded', 'failed', 'reverted', 'cancelled'];

export interface WorkView {
  state: WorkState;
  finishedAt?: Date;
  /** An agent reported the switched service unhealthy after the switch (during the watch). */
  unhealthy?: boolean;
}

/** Splits the targets into waves: a canary of `canary` targets, then waves of `maxConcurrency`. */
export function planWaves(targets: readonly FleetTarget[], spec: ResolvedRolloutSpec): FleetTarget[][] {
  if (targets.length === 0) return [];
  const canary = resolveAmount(spec.canary, targets.length, 1);
  const size = resolveAmount(spec.maxConcurrency, targets.length, 1);
  const waves: FleetTarget[][] = [targets.slice(0, canary)];
  for (let i = canary; i < targets.length; i += size) waves.push(targets.slice(i, i + size));
  return waves;
}

export type Decision =
  | { kind: 'idle'; state: RolloutState }
  | { kind: 'dispatch'; wave: number; targets: FleetTarget[] }
  | { kind: 'wait'; wave: number; reason: 'window' | 'running' | 'watch'; until?: Date }
  | { kind: 'halt'; wave: number; failures: number; maxErrors: number }
  | { kind: 'complete' };

export interface DecideInput {
  spec: ResolvedRolloutSpec;
  state: RolloutState;
  waves: readonly (readonly FleetTarget[])[];
  /** Work made so far, by targetKey. */
  work: ReadonlyMap<string, WorkView>;
  now: Date;
}

/**
 * Failures so far: runs that failed, LCs that had to go back to their original, and switched LCs
 * whose agent reported their service unhealthy after the switch.
 */
export function countFailures(work: ReadonlyMap<string, WorkView>): number {
  let n = 0;
  for (const w of work.values())
    if (w.state === 'failed' || w.state === 'reverted' || (w.state === 'succeeded' && w.unhealthy === true))
      n += 1;
  return n;
}

/** The next thing to do for a rollout. */
export function decide(input: DecideInput): Decision {
  if (input.state !== 'running') return { kind: 'idle', state: input.state };
  const total = input.waves.reduce((n, w) => n + w.length, 0);
  const maxErrors = resolveAmount(input.spec.maxErrors, total);
  const failures = countFailures(input.work);
  for (const [index, wave] of input.waves.entries()) {
    const pending = wave.filter((t) => !input.work.has(targetKey(t)));
    const views = wave.map((t) => input.work.get(targetKey(t))).filter((w): w is WorkView => w !== undefined);
    const active = views.some((w) => !terminalWorkStates.includes(w.state));
    const lastFinish = Math.max(0, ...views.map((w) => w.finishedAt?.getTime() ?? 0));
    const green = lastFinish + input.spec.watchSeconds * 1000;
    if (pending.length === 0 && !active && input.now.getTime() >= green) continue;
    // This is the wave in progress.
    if (failures > maxErrors) return { kind: 'halt', wave: index, failures, maxErrors };
    const open = pending.filter((t) => groupMayPatch(input.spec.windows[t.group], input.now));
    if (open.length > 0) return { kind: 'dispatch', wave: index, targets: open };
    if (active) return { kind: 'wait', wave: index, reason: 'running' };
    if (pending.length > 0) {
      const openings = pending
        .map((t) => nextOpening(input.spec.windows[t.group], input.now))
        .filter((d): d is Date => d !== undefined)
        .map((d) => d.getTime());
      return {
        kind: 'wait',
        wave: index,
        reason: 'window',
        until: openings.length > 0 ? new Date(Math.min(...openings)) : undefined,
      };
    }
    return { kind: 'wait', wave: index, reason: 'watch', until: new Date(green) };
  }
  if (failures > maxErrors) return { kind: 'halt', wave: input.waves.length - 1, failures, maxErrors };
  return { kind: 'complete' };
}

export type RolloutCommand = 'pause' | 'resume' | 'stop';

/** The state after an operator's command; throws FLEET_ROLLOUT_STATE when it does not apply. */
export function applyCommand(state: RolloutState, command: RolloutCommand): RolloutState {
  const next: Record<RolloutCommand, Partial<Record<RolloutState, RolloutState>>> = {
    pause: { running: 'paused', paused: 'paused' },
    resume: { paused: 'running', running: 'running' },
    // Resume never applies to a rollout awaiting approval: only an accepted approval starts it.
    stop: {
      'awaiting-approval': 'stopped',
      running: 'stopped',
      paused: 'stopped',
      stopped: 'stopped',
    },
  };
  const to = next[command][state];
  if (!to)
    throw new UnderstudyError('FLEET_ROLLOUT_STATE', `cannot ${command} a rollout that is ${state}`, {
      hint:
        state === 'halted'
          ? 'A halted rollout ended at max errors; start a new one after fixing the cause.'
          : state === 'awaiting-approval'
            ? 'The rollout starts when an administrator approves it by mail (its code binds its patch set).'
            : undefined,
    });
  return to;
}

/**
 * Switched LCs an agent reported unhealthy during the watch that have no rollback work yet, with
 * their wave: the control plane rolls each back to its unpatched original.
 */
export function unhealthyTargets(
  waves: readonly (readonly FleetTarget[])[],
  work: ReadonlyMap<string, WorkView>,
  rollbacks: ReadonlyMap<string, WorkView>,
): { wave: number; target: FleetTarget }[] {
  return waves.flatMap((targets, wave) =>
    targets
      .filter((t) => {
        const w = work.get(targetKey(t));
        return w?.state === 'succeeded' && w.unhealthy === true && !rollbacks.has(targetKey(t));
      })
      .map((target) => ({ wave, target })),
  );
}

/** The targets of a wave to roll back: those whose LC switched to the patched standby. */
export function rollbackTargets(
  wave: readonly FleetTarget[],
  work: ReadonlyMap<string, WorkView>,
): FleetTarget[] {
  return wave.filter((t) => work.get(targetKey(t))?.state === 'succeeded');
}
