/**
 * Where understudy keeps its state: the store, the pool images, the runtime files of each LC.
 * Default /var/lib/understudy; `--state-dir` or UNDERSTUDY_STATE_DIR override it, so tests and demos
 * can use a throwaway one.
 */
import path from 'node:path';

export const defaultStateDir = '/var/lib/understudy';

export function resolveStateDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.UNDERSTUDY_STATE_DIR ?? defaultStateDir);
}

export interface StatePaths {
  root: string;
  database: string;
  /** Runtime files of LCs: supervisor pid, console log, control channel. */
  lcsRuntime: string;
  cache: string;
  pools: string;
}

export function statePaths(root: string): StatePaths {
  return {
    root,
    database: path.join(root, 'understudy.db'),
    lcsRuntime: path.join(root, 'run'),
    cache: path.join(root, 'cache'),
    pools: path.join(root, 'pools'),
  };
}
