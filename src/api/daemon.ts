/**
 * `understudy serve`: the long-running daemon. Opens the store, loads the monitor configuration,
 * runs the monitor's schedule and serves the API; on SIGTERM/SIGINT (or `close()`) it stops
 * taking requests, lets the running poll finish, and closes the store.
 */
import type { FastifyInstance } from 'fastify';
import type { Catalogue } from '../catalogue/index.ts';
import type { Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { createImapReader, createSmtpSender } from '../mail/index.ts';
import {
  createMonitor,
  defaultConfigPath,
  loadMonitorConfig,
  openMonitorStore,
  realFetcher,
  type ManagedLcs,
  type Monitor,
  type StartPatchRun,
  type Fetcher,
} from '../monitor/index.ts';
import { buildApi } from './app.ts';

export interface DaemonOptions {
  stateDir: string;
  /**
   * The store and catalogue the composition root opened; the daemon leaves closing them to the
   * caller. Without it the daemon opens the state directory's store itself and closes it.
   */
  store?: { db: Db; catalogue: Catalogue };
  /** Default `<stateDir>/monitor.yaml`. */
  configPath?: string;
  logger: Logger;
  /** The inventory's view of LCs; without it the monitor knows no LCs (approvals set no flags). */
  managedLcs?: ManagedLcs;
  startPatchRun?: StartPatchRun;
  fetcher?: Fetcher;
  /** Override the configured listen port (0 = any free port). */
  port?: number;
  /** Install SIGTERM/SIGINT handlers (the CLI does; tests do not). */
  handleSignals?: boolean;
}

export interface Daemon {
  app: FastifyInstance;
  monitor: Monitor;
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
  const { db, catalogue } = options.store ?? openMonitorStore(options.stateDir);
  const mailer = config.mail ? createSmtpSender(config.mail.smtp) : null;
  const mailbox = config.mail?.imap ? createImapReader(config.mail.imap) : null;
  const monitor = createMonitor({
    db,
    catalogue,
    config,
    stateDir: options.stateDir,
    fetcher: options.fetcher ?? realFetcher,
    managedLcs: options.managedLcs ?? noManagedLcs,
    startPatchRun: options.startPatchRun,
    mailer,
    mailbox,
    logger: log,
  });
  const app = buildApi({ db, catalogue, monitor, config, logger: log });
  const url = await app.listen({ host: config.api.listen, port: options.port ?? config.api.port });
  monitor.start();
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
      await monitor.stop();
      if (!options.store) db.close();
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
  return { app, monitor, url, close, closed };
}
