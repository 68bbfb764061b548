/** `understudy serve`: the daemon (monitor schedule + HTTP API), which also drives approved patch runs. */
import type { Command } from 'commander';
import { UnderstudyError, createLogger } from '../../core/index.ts';
import { runDaemon } from '../../api/index.ts';
import { listLcs } from '../../inventory/index.ts';
import { openApp, type App, type HostContext } from '../../app/index.ts';
import type { ManagedLcs } from '../../monitor/index.ts';
import { recoverRuns, type RunDeps } from '../../run/index.ts';
import type { CliContext } from '../context.ts';

/** The LCs the monitor manages: the active ones; their Debian packages are read with dpkg-query inside. */
function managedLcs(app: App, host: HostContext | undefined): ManagedLcs {
  return {
    list: async () =>
      listLcs(app.db)
        .filter((lc) => lc.role === 'active')
        .map((lc) => lc.name),
    async installedPackages(lc) {
      const packages = new Map<string, string>();
      if (!host) return packages;
      const out = await host.driver
        .exec(lc, ['dpkg-query', '-W', '-f', '${Package}\t${Version}\n'], { okCodes: [0, 1, 127] })
        .catch(() => undefined);
      for (const line of out?.stdout.split('\n') ?? []) {
        const [name, version] = line.split('\t');
        if (name && version) packages.set(name, version);
      }
      return packages;
    },
  };
}

export function registerServeCommands(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description(
      'run the daemon: poll feeds on schedule, mail administrators, read approvals, run approved patches, serve the API',
    )
    .option('--config <file>', 'monitor configuration (default <state-dir>/monitor.yaml)')
    .option('--port <port>', 'override api.port')
    .action(async (o: { config?: string; port?: string }) => {
      const port = o.port === undefined ? undefined : Number(o.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536))
        throw new UnderstudyError('INVALID_ARGUMENT', `--port must be a port number, not "${o.port}"`);
      // The daemon logs NDJSON to stderr; pretty only on a terminal.
      const logger = createLogger({ pretty: process.stderr.isTTY && !ctx.json(), name: 'understudy-daemon' });
      const app = openApp(ctx.stateDir());
      const host = await app.hostIfReady();
      const runDeps: RunDeps | undefined = host && { db: app.db, host, catalogue: app.catalogue, logger };
      if (runDeps) {
        // A previous manager may have died mid-copy or mid-run: clean up and resume before serving.
        const removed = await runDeps.host.disks.recoverCopies(app.db, { logger });
        if (removed.length) logger.warn({ jobs: removed }, 'removed leftovers of interrupted disk copies');
        const { resumed, errors } = await recoverRuns(runDeps);
        for (const run of resumed)
          logger.warn({ runId: run.id, state: run.state }, 'resumed an interrupted patch run');
        for (const error of errors) logger.error({ err: error }, 'could not resume a patch run');
      }
      const daemon = await runDaemon({
        stateDir: ctx.stateDir(),
        configPath: o.config,
        logger,
        port,
        handleSignals: true,
        managedLcs: managedLcs(app, host),
        manager: app,
        host,
      });
      ctx.progress(`understudy daemon listening on ${daemon.url}`);
      if (daemon.firstTokenFile)
        ctx.progress(
          `the first admin API token is in ${daemon.firstTokenFile} (understudy token create makes more)`,
        );
      await daemon.closed;
      app.close();
    });
}
