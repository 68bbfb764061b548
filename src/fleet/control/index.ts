/** The public surface of fleet/control. */
export {
  createCa,
  openCa,
  createKeyAndCsr,
  signCsr,
  issueCertificate,
  revokeCertificate,
  type FleetCa,
  type IssuedCertificate,
} from './ca.ts';
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
} from './pg-cluster.ts';
export {
  openPool,
  clientConfig,
  bootstrapControlDatabase,
  unreachable,
  type DbEndpoint,
  type ClientIdentity,
} from './db.ts';
export { migrate, migrations, agentGroupRole } from './schema.ts';
export { createEnrolToken, enrolHost, revokeHost, agentRoleOf, audit } from './enrol.ts';
export { importServerAudit, refusalOf } from './server-audit.ts';
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
} from './rollouts.ts';
export {
  startControlWorker,
  openJobQueue,
  dispatchBatchSize,
  systemClock,
  type Clock,
  type ControlWorker,
  type ControlWorkerOptions,
} from './worker.ts';
export { syncInventory } from './inventory.ts';
export {
  lcCompliance,
  groupCompliance,
  complianceCsv,
  groupComplianceCsv,
  type LcCompliance,
  type GroupCompliance,
} from './compliance.ts';
export {
  startEnrolServer,
  type EnrolServer,
  type EnrolServerOptions,
  type EnrolResponse,
} from './enrol-server.ts';
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
} from './approval.ts';
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
} from './views.ts';
export {
  rolloutSteering,
  type RolloutSteering,
  type SteeringOptions,
  type ApiApproval,
  type ApiApprovalOutcome,
} from './steering.ts';
