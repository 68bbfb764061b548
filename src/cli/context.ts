/**
 * What every CLI command gets: the global options (state dir, --json, --debug) and the output
 * helpers that render either for a person or as JSON.
 */
import type { Command } from 'commander';
import { UnderstudyError, resolveStateDir } from '../core/index.ts';
import { openApp, type App } from '../app/index.ts';
import { createApiClient, resolveToken, type ApiClient } from './api-client.ts';

export interface GlobalOptions {
  stateDir?: string;
  json?: boolean;
  debug?: boolean;
  api?: string;
  token?: string;
}

export interface CliContext {
  /** The resolved state directory (from --state-dir, UNDERSTUDY_STATE_DIR or the default). */
  stateDir(): string;
  json(): boolean;
  /** Prints a result: `human` renders it for a person, --json prints `data` as JSON. */
  print(data: unknown, human: () => string): void;
  /** A line of progress for a person (stderr; silent with --json). */
  progress(line: string): void;
  /** The client of a running `serve` when --api (or UNDERSTUDY_API) is given, else null. */
  api(): ApiClient | null;
  /**
   * Opens the store in this process. With --api it throws API_UNSUPPORTED instead: a command given
   * --api talks to the daemon or refuses, it never opens the store behind the daemon's back.
   */
  openApp(): App;
  /** The command being run, e.g. `lc nic add` (set before its action runs). */
  command(): string;
  setCommand(name: string): void;
}

/** Whether --api (or UNDERSTUDY_API) names a daemon. */
export function apiRequested(opts: GlobalOptions): boolean {
  return Boolean(opts.api ?? process.env.UNDERSTUDY_API);
}

export function createContext(program: Command): CliContext {
  const opts = (): GlobalOptions => program.opts<GlobalOptions>();
  let command = '';
  return {
    command: () => command,
    setCommand(name) {
      command = name;
    },
    openApp() {
      if (apiRequested(opts()))
        throw new UnderstudyError(
          'API_UNSUPPORTED',
          `\`understudy ${command}\` cannot go through --api: it has no route on serve`,
          { hint: 'Run it without --api (unset UNDERSTUDY_API) on the host itself.' },
        );
      return openApp(resolveStateDir(opts().stateDir));
    },
    stateDir: () => resolveStateDir(opts().stateDir),
    json: () => opts().json === true,
    print(data, human) {
      if (opts().json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      else {
        const text = human();
        if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      }
    },
    progress(line) {
      if (!opts().json) process.stderr.write(`${line}\n`);
    },
    api() {
      const url = opts().api ?? process.env.UNDERSTUDY_API;
      if (!url) return null;
      return createApiClient(url, resolveToken(opts().token, resolveStateDir(opts().stateDir)));
    },
  };
}

/** Renders rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
