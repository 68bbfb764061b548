/** The public surface of fleet/rollout. */
export {
  resolveRolloutSpec,
  resolveAmount,
  rolloutSpecSchema,
  type RolloutSpec,
  type ResolvedRolloutSpec,
  type MaintenanceWindow,
  type Amount,
} from './spec.ts';
export { selectPatches, selectTargets, targetKey, type FleetPatch, type FleetTarget } from './selection.ts';
export { isWindowOpen, groupMayPatch, nextOpening, localMinuteOfWeek } from './windows.ts';
export {
  planWaves,
  decide,
  applyCommand,
  rollbackTargets,
  unhealthyTargets,
  countFailures,
  rolloutStates,
  workStates,
  terminalWorkStates,
  type RolloutState,
  type WorkState,
  type WorkView,
  type Decision,
  type RolloutCommand,
} from './progression.ts';
