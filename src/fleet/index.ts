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
export {
  createCa,
  openCa,
  createKeyAndCsr,
  signCsr,
  issueCertificate,
  revokeCertificate,
  type FleetCa,
  type IssuedCertificate,
} from './control/ca.ts';
export {
  createCluster,
  startCluster,
  stopCluster,
  clusterPid,
  installCrl,
  freePort,
  controlRole,
  fleetDatabase,
  type PgCluster,
} from './control/pg-cluster.ts';
export {
  openPool,
  clientConfig,
  bootstrapControlDatabase,
  unreachable,
  type DbEndpoint,
  type ClientIdentity,
} from './control/db.ts';
export { migrate, migrations, agentGroupRole } from './control/schema.ts';
export { createEnrolToken, enrolHost, revokeHost, agentRoleOf, audit } from './control/enrol.ts';
export { importServerAudit, refusalOf } from './control/server-audit.ts';
