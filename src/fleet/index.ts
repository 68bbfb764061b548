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
} from './rollout/index.ts';
export {
  selectPatches,
  selectTargets,
  targetKey,
  type FleetPatch,
  type FleetTarget,
} from './rollout/index.ts';
export { isWindowOpen, groupMayPatch, nextOpening, localMinuteOfWeek } from './rollout/index.ts';
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
} from './rollout/index.ts';
export {
  createCa,
  openCa,
  createKeyAndCsr,
  signCsr,
  issueCertificate,
  revokeCertificate,
  type FleetCa,
  type IssuedCertificate,
} from './control/index.ts';
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
} from './control/index.ts';
export {
  openPool,
  clientConfig,
  bootstrapControlDatabase,
  unreachable,
  type DbEndpoint,
  type ClientIdentity,
} from './control/index.ts';
export { migrate, migrations, agentGroupRole } from './control/index.ts';
export { createEnrolToken, enrolHost, revokeHost, agentRoleOf, audit } from './control/index.ts';
export { importServerAudit, refusalOf } from './control/index.ts';
export {
  createRollout,
  getRollout,
  tickRollout,
  commandRollout,
  rollbackWave,
  rollbackTarget,
  insertWork,
  insertWorkBatch,
  batchJobs,
  loadWork,
  loadTargets,
  loadCatalogue,
  type RolloutRow,
  type DispatchQueue,
  type DispatchJob,
  type DispatchBatch,
} from './control/index.ts';
export {
  startControlWorker,
  openJobQueue,
  dispatchBatchSize,
  systemClock,
  type Clock,
  type ControlWorker,
  type ControlWorkerOptions,
} from './control/index.ts';
export { syncInventory } from './control/index.ts';
export {
  FleetAgent,
  type AgentOptions,
  type HostRunner,
  type RunRequest,
  type RunOutcome,
  type HealthReport,
  type LcInventory,
  type PendingPackage,
} from './agent/index.ts';
export {
  AgentJournal,
  agentJournalSchema,
  type JournalEntry,
  type JournalState,
  type Outcome,
} from './agent/index.ts';
export { FakeHostRunner, type FakeRunnerOptions } from './agent/index.ts';
export {
  lcCompliance,
  groupCompliance,
  complianceCsv,
  groupComplianceCsv,
  type LcCompliance,
  type GroupCompliance,
} from './control/index.ts';
export {
  startEnrolServer,
  type EnrolServer,
  type EnrolServerOptions,
  type EnrolResponse,
} from './control/index.ts';
export {
  AppHostRunner,
  agentRunsSchema,
  runSummary,
  enrolOverHttps,
  readAgentConfig,
  agentConfigFile,
  type AppRunnerOptions,
  type AgentRunOptions,
  type AgentConfig,
} from './agent/index.ts';
export {
  composeRolloutNotification,
  notifyRolloutApprovals,
  processRolloutReplies,
  startRolloutApprovals,
  decideRolloutApproval,
  recordVerdict,
  reissueChallenge,
  refusalText,
  type RolloutRefusal,
  type ApprovalCheckOptions,
  type ApprovalAttempt,
  type RolloutApprovalOptions,
  type RolloutApprovalVerdict,
  type RolloutApprovals,
} from './control/index.ts';
export {
  listRolloutSummaries,
  rolloutDetail,
  rolloutHistory,
  listHostViews,
  fleetReader,
  type RolloutSummary,
  type RolloutDetail,
  type WaveView,
  type WaveState,
  type WaveTargetView,
  type HostView,
  type RolloutHistoryEntry,
} from './control/index.ts';
export {
  rolloutSteering,
  type RolloutSteering,
  type SteeringOptions,
  type ApiApproval,
  type ApiApprovalOutcome,
} from './control/index.ts';
