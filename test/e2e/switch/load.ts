/** Starts the load generator in the client namespace and reads its result and the client's TCP counters. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../../../src/core/index.ts';
import type { LoadOptions, LoadResult } from '../../../src/loadgen/index.ts';

const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-runner.ts');

export function startClientLoad(ns: string, options: LoadOptions): Promise<LoadResult> {
  return exec(['ip', 'netns', 'exec', ns, 'node', '--import', 'tsx', runner, JSON.stringify(options)], {
    timeoutMs: options.durationMs + 60_000,
    maxBuffer: 256 * 1024 * 1024,
  }).then((r) => JSON.parse(r.stdout) as LoadResult);
}

/** The client's absolute TCP counters: RSTs that ended connections, failed attempts, SYN retransmits. */
export async function clientCounters(ns: string): Promise<{ resets: number; attemptFails: number; synRetrans: number }> {
  const r = await exec(['ip', 'netns', 'exec', ns, 'nstat', '-asz', 'TcpEstabResets', 'TcpAttemptFails', 'TcpExtTCPSynRetrans']);
  const value = (name: string): number => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(r.stdout)?.[1] ?? 0);
  return { resets: value('TcpEstabResets'), attemptFails: value('TcpAttemptFails'), synRetrans: value('TcpExtTCPSynRetrans') };
}
