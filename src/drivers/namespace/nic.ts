/** Veth NICs of the namespace driver: the host end joins the bridge, the other end lives in the LC. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { exec } from '../../core/index.ts';
import type { NicSpec } from '../driver.ts';

/** Host-side name of a NIC, derived from its MAC so that it stays stable when the NIC moves between LCs. */
export function hostIfName(tag: string, mac: string): string {
  return `u${tag}${mac.replaceAll(':', '').slice(-6)}`;
}

function tempPeerName(): string {
  return `p${crypto.randomBytes(5).toString('hex')}`;
}

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

export function netnsExists(netns: string): boolean {
  return fs.existsSync(netnsPath(netns));
}

/** Creates a named network namespace with loopback up, IPv6 off and promote_secondaries on. */
export async function createNetns(netns: string): Promise<void> {
  if (!netnsExists(netns)) await exec(['ip', 'netns', 'add', netns]);
  await exec(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  await exec([
    'ip',
    'netns',
    'exec',
    netns,
    'sysctl',
    '-q',
    '-w',
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
    'net.ipv4.conf.all.promote_secondaries=1',
    'net.ipv4.conf.default.promote_secondaries=1',
  ]);
}

export async function deleteNetns(netns: string): Promise<void> {
  if (netnsExists(netns)) await exec(['ip', 'netns', 'del', netns]);
}

/** Sets the NIC's addresses inside the namespace and brings it up (after a create or a move). */
export async function configureNic(netns: string, nic: NicSpec): Promise<void> {
  await exec(['ip', '-n', netns, 'addr', 'flush', 'dev', nic.name]);
  for (const address of nic.addresses)
    await exec(['ip', '-n', netns, 'addr', 'add', address, 'dev', nic.name]);
  await exec(['ip', '-n', netns, 'link', 'set', nic.name, 'up']);
}

/** Creates the veth pair for a NIC; undoes itself on failure. */
export async function createNic(options: { tag: string; netns: string; nic: NicSpec }): Promise<void> {
  const { tag, netns, nic } = options;
  const host = hostIfName(tag, nic.mac);
  const peer = tempPeerName();
  await exec(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
  try {
    try {
      fs.writeFileSync(`/proc/sys/net/ipv6/conf/${host}/disable_ipv6`, '1');
    } catch {
      // IPv6 not compiled in: nothing to disable.
    }
    await exec(['ip', 'link', 'set', peer, 'netns', netns]);
    await exec(['ip', '-n', netns, 'link', 'set', peer, 'name', nic.name, 'address', nic.mac]);
    await configureNic(netns, nic);
    await exec(['ip', 'link', 'set', host, 'master', nic.bridge, 'up']);
  } catch (error) {
    await exec(['ip', 'link', 'del', host]).catch(() => undefined);
    throw error;
  }
}

export async function deleteNic(tag: string, mac: string): Promise<void> {
  const host = hostIfName(tag, mac);
  if (fs.existsSync(`/sys/class/net/${host}`)) await exec(['ip', 'link', 'del', host]);
}

export async function nicNamesIn(netns: string): Promise<string[]> {
  const out = await exec(['ip', '-n', netns, '-o', 'link', 'show']);
  return out.stdout
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}
