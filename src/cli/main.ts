/**
 * The `understudy` command. Each command group lives in commands/<group>.ts and registers itself here.
 * Errors are rendered only here: title + hint for a person, {error:{code,message,hint}} with --json
 * (on one line: after the one-object-per-line output of --follow it is the last such line), the stack
 * only for bugs or with --debug.
 */
import { Command, CommanderError } from 'commander';
import { UnderstudyError, killTrackedChildren } from '../core/index.ts';
import { apiRequested, createContext, type GlobalOptions } from './context.ts';
import { registerCommands } from './commands/index.ts';

function renderError(error: unknown, json: boolean, debug: boolean): number {
  if (error instanceof CommanderError) return error.exitCode;
  if (error instanceof UnderstudyError) {
    if (json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
    else {
      process.stderr.write(`error: ${error.message}\n`);
      process.stderr.write(`hint: ${error.hint}\n`);
      if (debug && error.stack) process.stderr.write(`${error.stack}\n`);
    }
    return error.code === 'INVALID_ARGUMENT' || error.code === 'CONFIG_INVALID' ? 2 : 1;
  }
  const bug = error instanceof Error ? error : new Error(String(error));
  if (json)
    process.stdout.write(`${JSON.stringify({ error: { code: 'INTERNAL', message: bug.message } })}\n`);
  process.stderr.write(`understudy hit a bug: ${bug.message}\n${bug.stack ?? ''}\n`);
  return 70;
}

/**
 * Commands that cannot go through `--api`, and why. Every other command that reads or changes the
 * host's state talks to the daemon when --api is given (and no command opens the store then: see
 * CliContext.openApp).
 */
const refusesApi: Record<string, string> = {
  demo: 'the demo makes a throwaway host with its own manager and tears it down; a daemon cannot host it',
  serve: 'serve is the daemon that --api talks to',
  'host init':
    'the daemon takes its pools and bridge at its start: run `understudy host init` with serve stopped, then start serve',
  'host destroy':
    'it removes the store and the pools the daemon holds: stop serve, then run `understudy host destroy`',
  control: "the fleet's control plane runs on PostgreSQL beside serve, not through it (docs/fleet.md)",
  agent: "the fleet agent is itself a manager of this host's LCs: run it instead of serve, not through it",
};

/** The full name of a command, e.g. `lc nic add`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('understudy')
    .description('Patch running Linux servers without stopping their service.')
    .option('--state-dir <dir>', 'state directory (default $UNDERSTUDY_STATE_DIR or /var/lib/understudy)')
    .option('--json', 'print machine-readable JSON')
    .option('--debug', 'print stack traces')
    .option('--api <url>', 'talk to a running `understudy serve` at this URL (or $UNDERSTUDY_API)')
    .option('--token <token>', 'API token for --api (default $UNDERSTUDY_TOKEN or <state-dir>/api-token)')
    .showHelpAfterError()
    .exitOverride();
  const ctx = createContext(program);
  registerCommands(program, ctx);
  program.hook('preAction', (_program, action) => {
    const name = commandPath(action);
    ctx.setCommand(name);
    if (!apiRequested(program.opts<GlobalOptions>())) return;
    const reason = refusesApi[name] ?? refusesApi[name.split(' ')[0] ?? ''];
    if (reason)
      throw new UnderstudyError(
        'API_UNSUPPORTED',
        `\`understudy ${name}\` cannot go through --api: ${reason}`,
        {
          hint: 'Run it without --api (unset UNDERSTUDY_API).',
        },
      );
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    // A command may set its own exit status (`lc exec` passes the command's on, the demo says NOT MET).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    const opts = program.opts<{ json?: boolean; debug?: boolean }>();
    return renderError(error, opts.json === true, opts.debug === true);
  } finally {
    await killTrackedChildren();
  }
}
