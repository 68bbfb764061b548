/** The daemon's HTTP API (fastify) under /v1: inventory, patches, runs, switches, monitor, approvals, events. */
export { buildApi, httpStatusOf, sessionCookie, type ApiDeps } from './app.ts';
export {
  tokenMatches,
  bearerToken,
  authenticate,
  createApiToken,
  listApiTokens,
  revokeApiToken,
  ensureFirstToken,
  tokenScopes,
  type TokenScope,
  type TokenInfo,
  type Principal,
} from './auth.ts';
export { apiSchema } from './schema.ts';
export { listAudit, type AuditEntry } from './audit.ts';
export { createOperations, runEventRecorder, type Operations, type OperationsDeps } from './operations.ts';
export { runDaemon, noManagedLcs, type Daemon, type DaemonOptions } from './daemon.ts';
export {
  createTrafficSampler,
  parseOutRsts,
  rate,
  type TrafficSampler,
  type TrafficSample,
  type TrafficWindow,
} from './traffic.ts';
export { copyProgressRecorder } from './host-admin.ts';
export { stepLabel } from './console/sections.ts';
export {
  type FleetReader,
  type FleetControl,
  type FleetRolloutSummary,
  type FleetRolloutDetail,
  type FleetHost,
  type FleetWaveTarget,
  type FleetLcCompliance,
  type FleetGroupCompliance,
} from './fleet-reader.ts';
