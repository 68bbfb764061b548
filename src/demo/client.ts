/**
 * A client "host" on the LC network: its own network namespace with one veth port on the bridge and an
 * address of the subnet. The demo and the tests send their traffic from here, as an outside client would.
 */
import crypto from 'node:crypto';
import { exec, type ExecResult } from '../core/index.ts';

export interface ClientHost {
  netns: string;
  /** The host end of the client's veth pair (a port of the bridge). */
  hostIf: string;
  address: string;
  run(argv: readonly string[], options?: { okCodes?: number[]; timeoutMs?: number }): Promise<ExecResult>;
  dispose(): Promise<void>;
}

export async function createClientHost(options: { bridge: string; address: string }): Promise<ClientHost> {
  const id = crypto.randomBytes(3).toString('hex');
  const netns = `ustc-${id}`;
  const outside = `utc${id}`;
  const inside = `utp${id}`;
  await exec(['ip', 'netns', 'add', netns]);
  try {
    await exec(['ip', 'link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
    await exec(['ip', 'link', 'set', inside, 'netns', netns]);
    await exec(['ip', '-n', netns, 'link', 'set', inside, 'name', 'eth0']);
    await exec([
      'ip',
      'netns',
      'exec',
      netns,
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv4.ip_local_port_range=10000 65000',
    ]);
    await exec(['ip', '-n', netns, 'addr', 'add', options.address, 'dev', 'eth0']);
    await exec(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);
    await exec(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    await exec(['ip', 'link', 'set', outside, 'master', options.bridge, 'up']);
  } catch (error) {
    await exec(['ip', 'link', 'del', outside]).catch(() => undefined);
    await exec(['ip', 'netns', 'del', netns]).catch(() => undefined);
    throw error;
  }
  return {
    netns,
    hostIf: outside,
    address: options.address,
    run: (argv, o = {}) =>
      exec(['ip', 'netns', 'exec', netns, ...argv], { okCodes: o.okCodes, timeoutMs: o.timeoutMs ?? 30_000 }),
    async dispose() {
      await exec(['ip', 'link', 'del', outside]).catch(() => undefined);
      await exec(['ip', 'netns', 'del', netns]).catch(() => undefined);
    },
  };
}
