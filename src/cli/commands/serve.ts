/** `understudy serve`: the daemon (monitor schedule + HTTP API). */
import type { Command } from 'commander';
import { UnderstudyError, createLogger } from '../../core/index.ts';
import { runDaemon } from '../../api/index.ts';
import type { CliContext } from '../context.ts';

export function registerServeCommands(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the daemon: poll feeds on schedule, mail administrators, read approvals, serve the API')
    .option('--config <file>', 'monitor configuration (default <state-dir>/monitor.yaml)')
    .option('--port <port>', 'override api.port')
    .action(async (o: { config?: string; port?: string }) => {
      const port = o.port === undefined ? undefined : Number(o.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UnderstudyError('INVALID_ARGUMENT', `--port must be a port number, not "${o.port}"`);
      // The daemon logs NDJSON to stderr; pretty only on a terminal.
      const logger = createLogger({ pretty: process.stderr.isTTY && !ctx.json(), name: 'understudy-daemon' });
      const daemon = await runDaemon({ stateDir: ctx.stateDir(), configPath: o.config, logger, port, handleSignals: true });
      ctx.progress(`understudy daemon listening on ${daemon.url}`);
      await daemon.closed;
    });
}
