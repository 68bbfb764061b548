/**
 * SYN retransmissions counted by the kernel (TcpExt TCPSynRetrans) in a network namespace: a client
 * whose SYN went unanswered during a switch retried it after ~1 s, which is a hidden stall even when
 * the request finally succeeded. Read it before and after a load run and subtract.
 */
import { readFile } from 'node:fs/promises';
import { realRunner, UnderstudyError, type CommandRunner } from '../core/index.ts';

export interface SynRetransmitOptions {
  /** Read inside this named namespace (`ip netns exec`); default: the namespace this process runs in. */
  netns?: string;
  runner?: CommandRunner;
}

/** Parses /proc/net/netstat text and returns TcpExt TCPSynRetrans. */
export function parseSynRetransmits(netstat: string): number {
  const lines = netstat.split('\n');
  for (let i = 0; i + 1 < lines.length; i += 1) {
    const names = lines[i]?.split(/\s+/) ?? [];
    const values = lines[i + 1]?.split(/\s+/) ?? [];
    if (names[0] !== 'TcpExt:' || values[0] !== 'TcpExt:') continue;
    const index = names.indexOf('TCPSynRetrans');
    const value = Number(values[index]);
    if (index > 0 && Number.isFinite(value)) return value;
  }
  throw new UnderstudyError('INTERNAL', 'TcpExt TCPSynRetrans not found in /proc/net/netstat', {
    hint: 'The kernel should expose it since Linux 3.x; check that /proc is mounted in this namespace.',
  });
}

/** The current TCPSynRetrans counter of the namespace. */
export async function readSynRetransmits(options: SynRetransmitOptions = {}): Promise<number> {
  if (!options.netns) return parseSynRetransmits(await readFile('/proc/net/netstat', 'utf8'));
  const runner = options.runner ?? realRunner;
  const result = await runner.exec(['ip', 'netns', 'exec', options.netns, 'cat', '/proc/net/netstat'], {
    timeoutMs: 10_000,
  });
  return parseSynRetransmits(result.stdout);
}
