/**
 * Planning a switch between two LCs of the resource table: which NIC holds the service address, which
 * NIC of the other LC takes it, and a free address of the subnet for LC1 afterwards.
 */
import { UnderstudyError } from '../core/index.ts';
import { ipToNumber, nthAddress, parseSubnet, subnetContains, type HostNetwork } from '../host/index.ts';
import { getLc, listLcs } from '../inventory/index.ts';
import type { Db } from '../store/index.ts';
import type { HealthCheck, SwitchMethod, SwitchPlanInput } from '../switch/index.ts';

const hostOf = (cidr: string): string => cidr.split('/')[0] ?? '';

/** An address of the bridge subnet that no LC, nor the host, uses (for LC1 after the switch). */
export function freeAddress(db: Db, network: HostNetwork, forLc: string): string {
  const subnet = parseSubnet(network.subnet);
  const used = new Set<number>([ipToNumber(hostOf(network.hostAddress)) ?? -1]);
  for (const lc of listLcs(db))
    for (const nic of lc.nics) for (const a of nic.addresses) used.add(ipToNumber(hostOf(a)) ?? -1);
  const size = 2 ** (32 - subnet.prefix);
  for (let n = size - 2; n > 1; n--) {
    const ip = nthAddress(subnet, n);
    if (!used.has(ipToNumber(ip) ?? -1) && subnetContains(subnet, ip)) return `${ip}/${subnet.prefix}`;
  }
  throw new UnderstudyError(
    'ADDRESS_INVALID',
    `No free address is left in ${network.subnet} for ${forLc} after the switch`,
  );
}

export interface PlanSwitchOptions {
  from: string;
  to: string;
  /** The service address (CIDR) `from` holds now. */
  service: string;
  port: number;
  healthPath: string;
  /** The service's own check (default: HTTP GET healthPath answering 200). */
  health?: HealthCheck;
  method: SwitchMethod;
  stateful: boolean;
  /** LC1's address after the switch (not for move-nic). */
  newAddress: string | undefined;
  drainTimeoutMs?: number;
}

export function planSwitch(db: Db, o: PlanSwitchOptions): SwitchPlanInput {
  const fromLc = getLc(db, o.from);
  const toLc = getLc(db, o.to);
  const fromNic = fromLc.nics.find((n) => n.addresses.some((a) => hostOf(a) === hostOf(o.service)));
  const toNic =
    toLc.nics.find((n) => !n.addresses.some((a) => hostOf(a) === hostOf(o.service))) ?? toLc.nics[0];
  if (!fromNic || !toNic)
    throw new UnderstudyError(
      'RUN_PRECONDITION',
      `Cannot plan the switch from ${o.from} to ${o.to}: ${!fromNic ? `${o.from} holds no NIC with ${o.service}` : `${o.to} has no NIC`}`,
    );
  return {
    method: o.method,
    service: { address: o.service, port: o.port },
    from: { lc: o.from, nic: fromNic.name, mac: fromNic.mac, newAddress: o.newAddress },
    to: { lc: o.to, nic: toNic.name, mac: toNic.mac },
    health: o.health ?? {
      kind: 'http',
      path: o.healthPath,
      expectStatus: 200,
      timeoutMs: 2000,
      retries: 5,
      intervalMs: 200,
    },
    stateful: o.stateful,
    ...(o.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: o.drainTimeoutMs }),
  };
}
