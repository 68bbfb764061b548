/** `understudy serve`: the daemon (monitor schedule + HTTP API), which also drives approved patch runs. */
import type { Command } from 'commander';
import { UnderstudyError, createLogger } from '../../core/index.ts';
import { runDaemon } from '../../api/index.ts';
import { listLcs } from '../../inventory/index.ts';
import { type App, type HostContext } from '../../app/index.ts';
import type { ManagedLcs } from '../../monitor/index.ts';
import { fleetReader, openJobQueue, openPool, rolloutSteering } from '../../fleet/index.ts';
import type { CliContext } from '../context.ts';
import { readControl } from './control.ts';

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
    .option(
      '--control-dir <dir>',
      "the fleet's control plane (understudy control init --dir): serve /v1/fleet/… and the /fleet pages",
    )
    .action(async (o: { config?: string; port?: string; controlDir?: string }) => {
      const port = o.port === undefined ? undefined : Number(o.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536))
        throw new UnderstudyError('INVALID_ARGUMENT', `--port must be a port number, not "${o.port}"`);
      // The daemon logs NDJSON to stderr; pretty only on a terminal.
      const logger = createLogger({ pretty: process.stderr.isTTY && !ctx.json(), name: 'understudy-daemon' });
      const app = ctx.openApp();
      // Before serving: what a crashed manager left half done is finished or reversed.
      const host = (await app.hostIfReady()) && (await app.start({ logger }));
      const control = o.controlDir ? readControl(o.controlDir) : undefined;
      const fleetDb = control ? openPool(control.endpoint, control.identity, 4) : undefined;
      // Rollouts created or steered through the API are ticked by `understudy control run`.
      const jobs = fleetDb ? await openJobQueue(fleetDb) : undefined;
      const daemon = await runDaemon({
        stateDir: ctx.stateDir(),
        configPath: o.config,
        logger,
        port,
        handleSignals: true,
        managedLcs: managedLcs(app, host),
        manager: app,
        host,
        ...(fleetDb && jobs
          ? {
              fleet: fleetReader(fleetDb),
              fleetControl: rolloutSteering({ db: fleetDb, jobs, logger, via: 'api' }),
            }
          : {}),
      });
      ctx.progress(`understudy daemon listening on ${daemon.url}`);
      if (daemon.firstTokenFile)
        ctx.progress(
          `the first admin API token is in ${daemon.firstTokenFile} (understudy token create makes more)`,
        );
      await daemon.closed;
      await jobs?.release();
      await fleetDb?.end();
      app.close();
    });
}
