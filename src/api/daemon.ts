/**
 * `understudy serve`: the long-running daemon. On the store and catalogue the composition root opened
 * (`openApp`), it loads the monitor configuration, runs the monitor's schedule and serves the API; on
 * SIGTERM/SIGINT (or `close()`) it stops taking requests, lets the running poll finish and the runs
 * reach a step boundary. The store stays open: whoever opened it closes it.
 * On its first start (no token anywhere) it makes an admin token in `<stateDir>/api-token`.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../core/index.ts';
import { EventLog, eventsSchema } from '../events/index.ts';
import { allSchemas, type App, type HostContext } from '../app/index.ts';
import { ensureSchemas } from '../store/index.ts';
import { createImapReader, createSmtpSender } from '../mail/index.ts';
import {
  createMonitor,
  defaultConfigPath,
  loadMonitorConfig,
  realFetcher,
  type ManagedLcs,
  type Monitor,
  type StartPatchRun,
  type Fetcher,
} from '../monitor/index.ts';
import { buildApi } from './app.ts';
import { ensureFirstToken } from './auth.ts';
import { createOperations, type Operations } from './operations.ts';
import { apiSchema } from './schema.ts';
import { createTrafficSampler } from './traffic.ts';
import type { FleetControl, FleetReader } from './fleet-reader.ts';

export interface DaemonOptions {
  stateDir: string;
  /** Default `<stateDir>/monitor.yaml`. */
  configPath?: string;
  logger: Logger;
  /** The inventory's view of LCs; without it the monitor knows no LCs (approvals set no flags). */
  managedLcs?: ManagedLcs;
  /** Approved patches start runs through this; default: the daemon's own runs (needs `host`). */
  startPatchRun?: StartPatchRun;
  /** The store and catalogue the composition root opened (`openApp`); the daemon never opens its own. */
  manager: Pick<App, 'stateDir' | 'db' | 'catalogue'>;
  /** The host the API acts on; without it the API answers host operations with HOST_NOT_INITIALISED. */
  host?: HostContext;
  fetcher?: Fetcher;
  /** Override the configured listen port (0 = any free port). */
  port?: number;
  /** Install SIGTERM/SIGINT handlers (the CLI does; tests do not). */
  handleSignals?: boolean;
  /** The fleet's control plane, read for /v1/fleet/… and the /fleet pages. */
  fleet?: FleetReader;
  /** Steering its rollouts through the API (next to `fleet`). */
  fleetControl?: FleetControl;
}

export interface Daemon {
  app: FastifyInstance;
  monitor: Monitor;
  operations: Operations;
  /** The file holding the admin token made on the first start, if this start made one. */
  firstTokenFile: string | null;
  /** The address the API listens on, e.g. http://127.0.0.1:8642 */
  url: string;
  close(): Promise<void>;
  /** Resolves when the daemon has shut down. */
  closed: Promise<void>;
}

export const noManagedLcs: ManagedLcs = { list: async () => [], installedPackages: async () => new Map() };

export async function runDaemon(options: DaemonOptions): Promise<Daemon> {
  const log = options.logger;
  const config = loadMonitorConfig(options.configPath ?? defaultConfigPath(options.stateDir), {
    required: options.configPath !== undefined,
  });
  const { db, catalogue } = options.manager;
  ensureSchemas(db, [...allSchemas, apiSchema, eventsSchema]);
  const events = new EventLog(db);
  const operations = createOperations({
    manager: options.manager,
    host: options.host,
    catalogue,
    events,
    logger: log,
  });
  const firstTokenFile = ensureFirstToken(db, options.stateDir, config.api.token);
  if (firstTokenFile)
    log.warn(
      { event: 'api.token.created', file: firstTokenFile },
      'made the first admin API token; it is in the file named',
    );
  const mailer = config.mail ? createSmtpSender(config.mail.smtp) : null;
  const mailbox = config.mail?.imap ? createImapReader(config.mail.imap) : null;
  const monitor = createMonitor({
    db,
    catalogue,
    config,
    stateDir: options.stateDir,
    fetcher: options.fetcher ?? realFetcher,
    managedLcs: options.managedLcs ?? noManagedLcs,
    startPatchRun: options.startPatchRun ?? (options.host ? approvedRunStarter(operations, log) : undefined),
    mailer,
    mailbox,
    logger: log,
  });
  const app = buildApi({
    db,
    catalogue,
    monitor,
    config,
    logger: log,
    events,
    operations,
    ...(options.fleet ? { fleet: options.fleet } : {}),
    ...(options.fleetControl ? { fleetControl: options.fleetControl } : {}),
  });
  const url = await app.listen({ host: config.api.listen, port: options.port ?? config.api.port });
  monitor.start();
  // The service's traffic during runs and switches, sampled by the daemon itself (see traffic.ts).
  const traffic = options.host
    ? createTrafficSampler({
        db,
        host: options.host,
        events,
        logger: log,
        switches: () =>
          operations.activeSwitches().map((s) => ({
            runId: null,
            switchId: s.switchId,
            lcs: [s.from, s.to],
            port: s.port,
          })),
      })
    : null;
  traffic?.start();
  log.info(
    {
      event: 'daemon.started',
      url,
      administrators: config.administrators.length,
      mail: config.mail !== null,
    },
    'understudy daemon started',
  );

  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      log.info({ event: 'daemon.stopping' }, 'understudy daemon stopping');
      await app.close();
      await traffic?.stop();
      await monitor.stop();
      // Runs stop at a step boundary and are left to recovery before the store can be closed.
      await operations.stop();
      if (options.handleSignals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      log.info({ event: 'daemon.stopped' }, 'understudy daemon stopped');
      resolveClosed();
    })());
  const onSignal = (): void => void close();
  if (options.handleSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return { app, monitor, operations, firstTokenFile, url, close, closed };
}

/** Approved patches start patch runs, one LC after another, in the background of the daemon. */
function approvedRunStarter(operations: Operations, logger: Logger): StartPatchRun {
  let queue = Promise.resolve();
  return async ({ lcs, patches, reason }) => {
    for (const lc of lcs) {
      queue = queue.then(async () => {
        try {
          const run = await operations.startRun({ lc, patches });
          await operations.settled();
          logger.info({ runId: run.id, lc, reason }, 'approved patch run finished');
        } catch (error) {
          logger.error({ lc, err: error, reason }, 'approved patch run failed');
        }
      });
    }
  };
}
