/**
 * The network operations the switch performs inside one LC's network namespace, each idempotent so
 * that a step can be re-run or undone after a crash: addresses, ARP behaviour, the steering table
 * (nftables, netdev ingress), announcements and counting the service's connections.
 */
import { UnderstudyError, sleep } from '../core/index.ts';
import type { SwitchSide } from './types.ts';

/** Name of the nftables table the switch owns in each LC (netdev family). */
export const steerTable = 'understudy_switch';

/**
 * The next hop the steering table forwards to (`fwd ip to … device …`): a link-local address no LC
 * holds, whose permanent neighbour entry in the LC is the peer's MAC, so that the kernel's neighbour
 * output writes the frame's header (the device's own MAC as the source, the peer's as the
 * destination). Packets keep their IP destination; nothing is ever sent to this address. Rewriting
 * the MACs with `ether saddr set` instead is refused (EPERM) in a network namespace that an
 * unprivileged container's user namespace owns, on current kernels.
 */
export const steerNextHop = '169.254.117.115';

/** "198.18.0.10/24" → "198.18.0.10". */
export function hostOf(cidr: string): string {
  return cidr.split('/')[0] ?? cidr;
}

export async function listAddresses(side: SwitchSide, dev: string): Promise<string[]> {
  const result = await side.netExec(['ip', '-j', '-4', 'addr', 'show', 'dev', dev], { okCodes: [0, 1] });
  if (result.exitCode !== 0) return [];
  const links = JSON.parse(result.stdout || '[]') as { addr_info?: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}

export async function hasDevice(side: SwitchSide, dev: string): Promise<boolean> {
  const result = await side.netExec(['ip', 'link', 'show', 'dev', dev], { okCodes: [0, 1] });
  return result.exitCode === 0;
}

export async function macOf(side: SwitchSide, dev: string): Promise<string | undefined> {
  const result = await side.netExec(['ip', '-j', 'link', 'show', 'dev', dev], { okCodes: [0, 1] });
  if (result.exitCode !== 0) return undefined;
  return (JSON.parse(result.stdout) as { address?: string }[])[0]?.address?.toLowerCase();
}

/** Every device of the LC but lo, with its MAC. */
export async function devicesOf(side: SwitchSide): Promise<{ name: string; mac: string }[]> {
  const result = await side.netExec(['ip', '-j', 'link', 'show']);
  return (JSON.parse(result.stdout || '[]') as { ifname: string; address?: string; link_type?: string }[])
    .filter((l) => l.link_type !== 'loopback' && l.address !== undefined)
    .map((l) => ({ name: l.ifname, mac: (l.address ?? '').toLowerCase() }));
}

/** The name of the LC's device with this MAC, if it has one (a NIC keeps its MAC when it moves). */
export async function deviceWithMac(side: SwitchSide, mac: string): Promise<string | undefined> {
  return (await devicesOf(side)).find((d) => d.mac === mac.toLowerCase())?.name;
}

/** Adds (or keeps) an address; `ip addr replace` is idempotent. */
export async function addAddress(side: SwitchSide, cidr: string, dev: string): Promise<void> {
  await side.netExec(['ip', 'addr', 'replace', cidr, 'dev', dev]);
}

/** Removes an address if present (exact host match on that device). */
export async function removeAddress(side: SwitchSide, cidr: string, dev: string): Promise<void> {
  const present = (await listAddresses(side, dev)).find((a) => hostOf(a) === hostOf(cidr));
  if (present) await side.netExec(['ip', 'addr', 'del', present, 'dev', dev]);
}

export async function setSysctl(side: SwitchSide, key: string, value: string): Promise<void> {
  await side.netExec(['sysctl', '-q', '-w', `${key}=${value}`]);
}

export async function readSysctl(side: SwitchSide, key: string): Promise<string> {
  return (await side.netExec(['sysctl', '-n', key])).stdout.trim();
}

/** ARP settings saved before `quietArp` changed them, keyed by sysctl name. */
export type SavedSysctls = Record<string, string>;

/**
 * Makes an LC hold an address privately (on lo) without answering ARP for it on any NIC:
 * arp_ignore=1 answers only for addresses on the incoming interface, arp_announce=2 keeps the address
 * out of the LC's own ARP requests. Returns the values it replaced (keep the first saving on re-runs).
 */
export async function quietArp(side: SwitchSide, dev: string): Promise<SavedSysctls> {
  const saved: SavedSysctls = {};
  for (const scope of ['all', dev]) {
    for (const [name, value] of [
      ['arp_ignore', '1'],
      ['arp_announce', '2'],
    ] as const) {
      const key = `net.ipv4.conf.${scope}.${name}`;
      saved[key] = await readSysctl(side, key);
      await setSysctl(side, key, value);
    }
  }
  return saved;
}

/** Puts back what quietArp replaced (0 for a key with no saved value). */
export async function restoreArp(
  side: SwitchSide,
  dev: string,
  saved: SavedSysctls | undefined,
): Promise<void> {
  for (const scope of ['all', dev]) {
    for (const name of ['arp_ignore', 'arp_announce']) {
      const key = `net.ipv4.conf.${scope}.${name}`;
      await side.netExec(['sysctl', '-q', '-w', `${key}=${saved?.[key] ?? '0'}`], { okCodes: [0, 255] });
    }
  }
}

/** Deleting a primary address also deletes its secondaries and the subnet route unless this is set. */
export async function promoteSecondaries(side: SwitchSide, dev: string): Promise<void> {
  for (const scope of ['all', dev]) await setSysctl(side, `net.ipv4.conf.${scope}.promote_secondaries`, '1');
}

/**
 * Which packets of the service a steering table passes on to the peer's MAC:
 * - `new-flows`: flows that start (SYN) after the table is installed; older flows stay local.
 * - `old-flows`: flows that did not start here after the table was installed (LC2 during instant).
 * - `all`: every packet to the service (an LC that no longer holds the address).
 * - `own-flows`: only the flows an `old-flows` table saw start stay local; new flows (SYN) and every
 *   other packet go to the peer (LC2 giving the address back: it finishes its own connections while
 *   new ones go to LC1). Loaded over an `old-flows` table, it keeps the flows that table tracked.
 */
export type SteerMode = 'new-flows' | 'old-flows' | 'all' | 'own-flows';

export interface SteerOptions {
  mode: SteerMode;
  dev: string;
  /** The service address and port whose TCP packets are steered. */
  address: string;
  port: number;
  /** The peer's MAC: the destination of passed-on frames (their source is `dev`'s own MAC). */
  peerMac: string;
}

export function steerRuleset(o: SteerOptions): string {
  const match = `ip daddr ${hostOf(o.address)} tcp dport ${o.port}`;
  const forward = `counter fwd ip to ${steerNextHop} device "${o.dev}"`;
  const syn = `${match} tcp flags & (syn | ack) == syn`;
  const known = `${match} ip saddr . tcp sport @flows`;
  const rules =
    o.mode === 'new-flows'
      ? [`${syn} add @flows { ip saddr . tcp sport } ${forward}`, `${known} ${forward}`]
      : o.mode === 'old-flows'
        ? [`${syn} add @flows { ip saddr . tcp sport } accept`, `${known} accept`, `${match} ${forward}`]
        : o.mode === 'own-flows'
          ? [`${syn} ${forward}`, `${known} accept`, `${match} ${forward}`]
          : [`${match} ${forward}`];
  const set = `  set flows { type ipv4_addr . inet_service; flags dynamic; size 262144; }`;
  const hook = `    type filter hook ingress device "${o.dev}" priority -500; policy accept;`;
  // Declaring then deleting the table makes the load replace an old one atomically (or create it).
  // `own-flows` keeps the table and its set of flows (declaring what exists changes nothing) and
  // replaces only the chain's rules, in the same transaction.
  const start =
    o.mode === 'own-flows'
      ? [
          `table netdev ${steerTable} {`,
          set,
          `  chain ingress {`,
          hook,
          `  }`,
          `}`,
          `flush chain netdev ${steerTable} ingress`,
          `table netdev ${steerTable} {`,
          `  chain ingress {`,
        ]
      : [
          `table netdev ${steerTable} {}`,
          `delete table netdev ${steerTable}`,
          `table netdev ${steerTable} {`,
          set,
          `  chain ingress {`,
          hook,
        ];
  return [...start, ...rules.map((r) => `    ${r}`), `  }`, `}`, ''].join('\n');
}

export async function installSteer(side: SwitchSide, options: SteerOptions): Promise<void> {
  await side.netExec([
    'ip',
    'neigh',
    'replace',
    steerNextHop,
    'lladdr',
    options.peerMac,
    'dev',
    options.dev,
    'nud',
    'permanent',
  ]);
  await side.netExec(['nft', '-f', '-'], { input: steerRuleset(options) });
}

export async function removeSteer(side: SwitchSide): Promise<void> {
  await side.netExec(['nft', 'delete', 'table', 'netdev', steerTable], { okCodes: [0, 1] });
  await side.netExec(['ip', 'neigh', 'flush', 'to', steerNextHop, 'nud', 'permanent'], {
    okCodes: [0, 1, 2],
  });
}

/**
 * Sends gratuitous ARP for `address` out of `dev`. arping always lingers a second after sending, so
 * this waits only until the frame is out (the process has started and sent) and returns a promise the
 * caller awaits later to collect the exit status.
 */
export async function announce(
  side: SwitchSide,
  address: string,
  dev: string,
  options: { waitForFrame?: boolean } = {},
): Promise<{ done: Promise<void> }> {
  const ip = hostOf(address);
  const done = side
    .netExec(['arping', '-q', '-U', '-c', '1', '-I', dev, '-s', ip, ip], { timeoutMs: 5000 })
    .then(() => undefined);
  if (options.waitForFrame ?? true) await sleep(40);
  return { done };
}

/**
 * Another machine on the segment answers ARP for `address` (duplicate address detection from `dev`,
 * whose own answers do not count). Returns the MACs that answered, except `ownMacs`.
 */
export async function otherHolders(
  side: SwitchSide,
  address: string,
  dev: string,
  ownMacs: readonly string[],
): Promise<string[]> {
  const result = await side.netExec(['arping', '-D', '-c', '2', '-w', '1', '-I', dev, hostOf(address)], {
    okCodes: [0, 1],
    timeoutMs: 5000,
  });
  const macs = [...result.stdout.matchAll(/\[([0-9A-Fa-f:]{17})\]/g)].map((m) => (m[1] ?? '').toLowerCase());
  return [...new Set(macs)].filter((m) => !ownMacs.includes(m));
}

/**
 * Connections of the service (local port) that still carry requests: every TCP state but LISTEN,
 * TIME-WAIT and CLOSED. Counts only the LC's own sockets — flows steered elsewhere never reach them.
 */
export async function countServiceConnections(side: SwitchSide, port: number): Promise<number> {
  const states = ['established', 'syn-recv', 'fin-wait-1', 'fin-wait-2', 'close-wait', 'last-ack', 'closing'];
  const argv = ['ss', '-Htn', ...states.flatMap((s) => ['state', s]), `( sport = :${port} )`];
  const result = await side.netExec(argv);
  return result.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

/** Waits until the LC has no connection of the service, or the timeout passes; returns what is left. */
export async function waitForDrain(side: SwitchSide, port: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await countServiceConnections(side, port);
    if (left === 0 || Date.now() >= deadline) return left;
    await sleep(10);
  }
}

export function requireAddress(plan: { newAddress?: string }, lc: string, method: string): string {
  if (!plan.newAddress) {
    throw new UnderstudyError('SWITCH_PLAN_INVALID', `The ${method} switch needs a new address for ${lc}`, {
      hint: 'Give LC1 a spare address in the service subnet (--from-address).',
    });
  }
  return plan.newAddress;
}
