/** Starts the load generator in the client namespace and reads its result and the client's TCP counters. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec, spawnProcess } from '../../../src/core/index.ts';
import type { LoadOptions, LoadResult } from '../../../src/loadgen/index.ts';

const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-runner.ts');

export interface ClientLoad extends Promise<LoadResult> {
  /** Stops scheduling; the promise resolves once in-flight requests ended. */
  stop(): void;
}

export function startClientLoad(ns: string, options: LoadOptions): ClientLoad {
  const proc = spawnProcess([
    'ip',
    'netns',
    'exec',
    ns,
    'node',
    '--import',
    'tsx',
    runner,
    JSON.stringify(options),
  ]);
  const chunks: Buffer[] = [];
  proc.child.stdout?.on('data', (c: Buffer) => chunks.push(c));
  const result = proc.done.then((r) => {
    if (r.exitCode !== 0)
      throw new Error(`load generator exited with ${String(r.exitCode)}: ${r.stderr.slice(-2000)}`);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as LoadResult;
  });
  return Object.assign(result, { stop: () => void proc.child.kill('SIGTERM') });
}

/** The client's absolute TCP counters: RSTs that ended connections, failed attempts, SYN retransmits. */
export async function clientCounters(
  ns: string,
): Promise<{ resets: number; attemptFails: number; synRetrans: number }> {
  const r = await exec([
    'ip',
    'netns',
    'exec',
    ns,
    'nstat',
    '-asz',
    'TcpEstabResets',
    'TcpAttemptFails',
    'TcpExtTCPSynRetrans',
  ]);
  const value = (name: string): number =>
    Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(r.stdout)?.[1] ?? 0);
  return {
    resets: value('TcpEstabResets'),
    attemptFails: value('TcpAttemptFails'),
    synRetrans: value('TcpExtTCPSynRetrans'),
  };
}
