/** The daemon's HTTP API (fastify): monitor status, the patch table, approvals. */
export { buildApi, type ApiDeps } from './app.ts';
export { tokenMatches, bearerToken } from './auth.ts';
export { runDaemon, noManagedLcs, type Daemon, type DaemonOptions } from './daemon.ts';
