/**
 * The host's "physical network": one Linux bridge with a subnet inside 198.18.0.0/15 by default and the
 * host's own address on it. No route to the host's uplink is ever added for it.
 */
import fs from 'node:fs';
import { UnderstudyError, exec } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { nthAddress, parseSubnet } from './subnet.ts';

export interface HostNetwork {
  /** Short random id that makes this host's device and namespace names unique. */
  tag: string;
  bridge: string;
  subnet: string;
  /** CIDR of the host's own address on the bridge. */
  hostAddress: string;
}

interface NetworkRow {
  tag: string;
  bridge: string;
  subnet: string;
  host_address: string;
}

export function getNetwork(db: Db): HostNetwork | undefined {
  const row = db.prepare('SELECT * FROM host_network WHERE id = 1').get() as NetworkRow | undefined;
  return row && { tag: row.tag, bridge: row.bridge, subnet: row.subnet, hostAddress: row.host_address };
}

export function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

export function planNetwork(options: { tag: string; subnet?: string; bridge?: string }): HostNetwork {
  const subnet = parseSubnet(options.subnet ?? '198.18.0.0/24');
  const bridge = options.bridge ?? `us${options.tag}br`;
  if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,14}$/.test(bridge)) {
    throw new UnderstudyError(
      'NETWORK_INVALID',
      `"${bridge}" is not a valid bridge name (1–15 letters, digits, _ or -)`,
    );
  }
  return {
    tag: options.tag,
    bridge,
    subnet: subnet.cidr,
    hostAddress: `${nthAddress(subnet, 1)}/${subnet.prefix}`,
  };
}

/** Creates the bridge with the host address, if missing. Idempotent. */
export async function ensureBridge(network: HostNetwork): Promise<void> {
  if (!linkExists(network.bridge)) {
    await exec([
      'ip',
      'link',
      'add',
      'name',
      network.bridge,
      'type',
      'bridge',
      'forward_delay',
      '0',
      'stp_state',
      '0',
    ]);
  }
  const addrs = await exec(['ip', '-o', '-4', 'addr', 'show', 'dev', network.bridge]);
  if (!addrs.stdout.includes(` ${network.hostAddress} `)) {
    await exec(['ip', 'addr', 'add', network.hostAddress, 'dev', network.bridge]);
  }
  await exec(['ip', 'link', 'set', network.bridge, 'up']);
}

export async function removeBridge(network: HostNetwork): Promise<void> {
  if (linkExists(network.bridge)) await exec(['ip', 'link', 'del', network.bridge]);
}
