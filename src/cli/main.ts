/**
 * The `understudy` command. Each command group lives in commands/<group>.ts and registers itself here.
 * Errors are rendered only here: title + hint for a person, {error:{code,message,hint}} with --json,
 * the stack only for bugs or with --debug.
 */
import { Command, CommanderError } from 'commander';
import { UnderstudyError, killTrackedChildren } from '../core/index.ts';
import { createContext } from './context.ts';
import { registerCommands } from './commands/index.ts';

function renderError(error: unknown, json: boolean, debug: boolean): number {
  if (error instanceof CommanderError) return error.exitCode;
  if (error instanceof UnderstudyError) {
    if (json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() }, null, 2)}\n`);
    else {
      process.stderr.write(`error: ${error.message}\n`);
      process.stderr.write(`hint: ${error.hint}\n`);
      if (debug && error.stack) process.stderr.write(`${error.stack}\n`);
    }
    return error.code === 'INVALID_ARGUMENT' || error.code === 'CONFIG_INVALID' ? 2 : 1;
  }
  const bug = error instanceof Error ? error : new Error(String(error));
  if (json)
    process.stdout.write(
      `${JSON.stringify({ error: { code: 'INTERNAL', message: bug.message } }, null, 2)}\n`,
    );
  process.stderr.write(`understudy hit a bug: ${bug.message}\n${bug.stack ?? ''}\n`);
  return 70;
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
