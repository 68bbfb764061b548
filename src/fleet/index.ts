/**
 * Fleets: one control plane on PostgreSQL (graphile-worker for scheduling and retries) for many
 * hosts, each running an agent that takes only its own host's work and runs it through the host's
 * own durable patch run. Rollouts move in waves (canary first) under maintenance windows and rate
 * controls, gated by post-switch health.
 */
export {
  resolveRolloutSpec,
  resolveAmount,
  rolloutSpecSchema,
  type RolloutSpec,
  type ResolvedRolloutSpec,
  type MaintenanceWindow,
  type Amount,
} from './rollout/spec.ts';
export {
  selectPatches,
  selectTargets,
  targetKey,
  type FleetPatch,
  type FleetTarget,
} from './rollout/selection.ts';
export { isWindowOpen, groupMayPatch, nextOpening, localMinuteOfWeek } from './rollout/windows.ts';
export {
  planWaves,
  decide,
  applyCommand,
  rollbackTargets,
  countFailures,
  rolloutStates,
  workStates,
  terminalWorkStates,
  type RolloutState,
  type WorkState,
  type WorkView,
  type Decision,
  type RolloutCommand,
} from './rollout/progression.ts';
