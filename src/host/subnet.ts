/** IPv4 subnet arithmetic for the host network (CIDR parse, membership, the host and LC addresses). */
import { UnderstudyError } from '../core/index.ts';

export interface Subnet {
  /** Network address as a 32-bit unsigned number. */
  network: number;
  prefix: number;
  cidr: string;
}

export function ipToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const v = Number(part);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseSubnet(cidr: string): Subnet {
  const [ip, prefixText] = cidr.split('/');
  const base = ip === undefined ? undefined : ipToNumber(ip);
  const prefix = Number(prefixText);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
    throw new UnderstudyError(
      'NETWORK_INVALID',
      `"${cidr}" is not an IPv4 subnet in CIDR form with a prefix of 8 to 30`,
    );
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (base & mask) >>> 0;
  return { network, prefix, cidr: `${numberToIp(network)}/${prefix}` };
}

export function subnetContains(subnet: Subnet, ip: string): boolean {
  const n = ipToNumber(ip);
  if (n === undefined) return false;
  const size = 2 ** (32 - subnet.prefix);
  return n > subnet.network && n < subnet.network + size - 1;
}

/** The n-th usable address of the subnet (1 = the first after the network address). */
export function nthAddress(subnet: Subnet, n: number): string {
  return numberToIp(subnet.network + n);
}

/** Parses "a.b.c.d/len" into its parts; throws ADDRESS_INVALID naming the value. */
export function parseAddress(cidr: string): { ip: string; prefix: number } {
  const [ip, prefixText] = cidr.split('/');
  const prefix = prefixText === undefined ? NaN : Number(prefixText);
  if (
    ip === undefined ||
    ipToNumber(ip) === undefined ||
    !Number.isInteger(prefix) ||
    prefix < 8 ||
    prefix > 32
  ) {
    throw new UnderstudyError(
      'ADDRESS_INVALID',
      `"${cidr}" is not an IPv4 address in CIDR form (e.g. 198.18.0.10/24)`,
    );
  }
  return { ip, prefix };
}

/** True when the subnet lies inside 198.18.0.0/15, the benchmarking range understudy uses by default. */
export function insideBenchmarkRange(subnet: Subnet): boolean {
  const range = parseSubnet('198.18.0.0/15');
  const mask = (0xffffffff << (32 - 15)) >>> 0;
  return subnet.prefix >= 15 && (subnet.network & mask) >>> 0 === range.network;
}
