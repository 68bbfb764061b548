/**
 * Turns an operator's LC request (flags or a config file entry) into a complete, checked resource-table
 * record. Every refusal names the field and the value and says what would be accepted.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { defaultDriver, type DiskSpec, type NicSpec } from '../drivers/index.ts';
import { parseAddress, parseSubnet, subnetContains, type HostNetwork, type Pool } from '../host/index.ts';
import { findLc, listLcs, type LcRecord, type LcRole } from './lc-record.ts';
import { validateServices } from './service.ts';

export interface LcRequest {
  name: string;
  image: string;
  /** CPU set, e.g. "0" or "0-1" (default "0"). */
  cpus?: string;
  /** Percent of one CPU (default 100). */
  cpuSharePercent?: number;
  memoryMb?: number;
  /** System disk size (MiB, default 1024). */
  systemDiskMb?: number;
  /** Application disk size (MiB, default 512); 0 = no application disk. */
  appDiskMb?: number;
  /** Where the application disk is mounted inside the LC (default /srv). */
  appMountPath?: string;
  /** Pool for the disks (default main). */
  pool?: string;
  extraDisks?: { name: string; sizeMb: number; mountPath: string; pool?: string }[];
  /** Addresses (CIDR, or a bare IP taking the subnet's prefix) of eth0; [] = no NIC. */
  addresses?: string[];
  mac?: string;
  role?: LcRole;
  /** Partitioning driver that runs the LC (default lxc): lxc | namespace (retired for operators, the project's tests only). */
  driver?: string;
  /** The services the LC runs (checked with validateServices). */
  services?: unknown[];
}

export interface HostCapacity {
  cpuCount: number;
  memoryMb: number;
}

export function hostCapacity(): HostCapacity {
  return { cpuCount: os.availableParallelism(), memoryMb: Math.floor(os.totalmem() / 1024 / 1024) };
}

export function parseCpuSet(text: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m)
      throw new UnderstudyError(
        'INVALID_ARGUMENT',
        `cpus: "${text}" is not a CPU set (e.g. "0", "0-1", "0,2")`,
      );
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new UnderstudyError('INVALID_ARGUMENT', `cpus: "${part}" is an empty range`);
    for (let c = from; c <= to; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

const namePattern = /^[a-z][a-z0-9-]{0,19}$/;
const mountPathPattern = /^\/[A-Za-z0-9._/-]*$/;

function randomMac(): string {
  const bytes = crypto.randomBytes(3);
  return ['02', '75', '73', ...[...bytes].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export interface ValidateNicOptions {
  db: Db;
  network: HostNetwork;
  /** The LC the NIC is for (named as the owner of its addresses in later errors). */
  lc: string;
  /** Name inside the LC, e.g. eth1. */
  name: string;
  /** Addresses in the bridge subnet (a bare address gets the subnet's prefix); none is allowed. */
  addresses: readonly string[];
  mac?: string;
}

/**
 * A NIC on the host's bridge: its addresses inside the bridge subnet and used by nobody else (no LC,
 * not the host), its MAC unicast and unique (generated when not given). Throws ADDRESS_INVALID or
 * INVALID_ARGUMENT naming the value.
 */
export function validateNic(options: ValidateNicOptions): NicSpec {
  const { db, network } = options;
  const subnet = parseSubnet(network.subnet);
  const used = new Map<string, string>();
  used.set(network.hostAddress.split('/')[0] ?? '', 'the host');
  for (const lc of listLcs(db))
    for (const nic of lc.nics)
      for (const a of nic.addresses) used.set(a.split('/')[0] ?? '', `LC ${lc.name}`);
  const cidrs = options.addresses.map((a) => (a.includes('/') ? a : `${a}/${subnet.prefix}`));
  for (const cidr of cidrs) {
    const { ip } = parseAddress(cidr);
    if (!subnetContains(subnet, ip)) {
      throw new UnderstudyError(
        'ADDRESS_INVALID',
        `address ${ip} is outside the bridge subnet ${network.subnet}`,
        {
          hint: `Pick an address inside ${network.subnet}.`,
        },
      );
    }
    const owner = used.get(ip);
    if (owner) throw new UnderstudyError('ADDRESS_INVALID', `address ${ip} is already used by ${owner}`);
    used.set(ip, options.lc);
  }
  const mac = (options.mac ?? randomMac()).toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `mac: "${mac}" is not a unicast MAC address (e.g. 02:75:73:00:00:01)`,
    );
  }
  if (listLcs(db).some((lc) => lc.nics.some((n) => n.mac === mac)))
    throw new UnderstudyError('INVALID_ARGUMENT', `mac: ${mac} is already used by another LC`);
  return { name: options.name, bridge: network.bridge, mac, addresses: cidrs };
}

export interface ValidateLcOptions {
  db: Db;
  request: LcRequest;
  network: HostNetwork;
  pools: readonly Pool[];
  capacity?: HostCapacity;
  driver?: string;
  imageExists: (image: string) => boolean;
}

export function validateLcRequest(options: ValidateLcOptions): Omit<LcRecord, 'createdAt'> {
  const { db, request: r, network, pools } = options;
  const capacity = options.capacity ?? hostCapacity();
  if (!namePattern.test(r.name)) {
    throw new UnderstudyError(
      'LC_NAME_INVALID',
      `"${r.name}" is not a valid LC name (1–20 of a-z, 0-9, -, starting with a letter)`,
    );
  }
  if (findLc(db, r.name))
    throw new UnderstudyError('LC_EXISTS', `A logical computer named "${r.name}" already exists`);
  if (!options.imageExists(r.image)) {
    throw new UnderstudyError('IMAGE_NOT_FOUND', `There is no image "${r.image}"`, {
      hint: `Build it first: understudy image build ${r.image}`,
    });
  }

  const cpus = r.cpus ?? '0';
  const cpuList = parseCpuSet(cpus);
  const missing = cpuList.filter((c) => c >= capacity.cpuCount);
  if (missing.length) {
    throw new UnderstudyError(
      'RESOURCES_EXCEEDED',
      `cpus: CPU ${missing.join(',')} does not exist; the host has CPUs 0-${capacity.cpuCount - 1}`,
    );
  }
  const share = r.cpuSharePercent ?? 100;
  if (!Number.isInteger(share) || share < 1 || share > 100 * cpuList.length) {
    throw new UnderstudyError(
      'RESOURCES_EXCEEDED',
      `cpu share: ${share}% is not between 1% and ${100 * cpuList.length}% (100% per CPU in the set "${cpus}")`,
    );
  }
  const memoryMb = r.memoryMb ?? 128;
  const committedMemory = listLcs(db).reduce((sum, lc) => sum + lc.memoryMb, 0);
  if (!Number.isInteger(memoryMb) || memoryMb < 16)
    throw new UnderstudyError('INVALID_ARGUMENT', `memory: ${memoryMb} MB is too small (at least 16 MB)`);
  if (memoryMb + committedMemory > capacity.memoryMb) {
    throw new UnderstudyError(
      'RESOURCES_EXCEEDED',
      `memory: ${memoryMb} MB asked, but only ${capacity.memoryMb - committedMemory} MB of the host's ${capacity.memoryMb} MB are not given to other LCs`,
    );
  }

  const poolName = r.pool ?? 'main';
  const disks: DiskSpec[] = [
    { name: 'system', pool: poolName, sizeMb: r.systemDiskMb ?? 1024, mountPath: '/' },
  ];
  const appMountPath = r.appMountPath ?? '/srv';
  if ((r.appDiskMb ?? 512) > 0)
    disks.push({ name: 'app', pool: poolName, sizeMb: r.appDiskMb ?? 512, mountPath: appMountPath });
  for (const extra of r.extraDisks ?? [])
    disks.push({
      name: extra.name,
      pool: extra.pool ?? poolName,
      sizeMb: extra.sizeMb,
      mountPath: extra.mountPath,
    });
  const seen = new Set<string>();
  for (const disk of disks) {
    if (!/^[a-z][a-z0-9-]{0,19}$/.test(disk.name) || seen.has(disk.name))
      throw new UnderstudyError('INVALID_ARGUMENT', `disk name "${disk.name}" is invalid or repeated`);
    seen.add(disk.name);
    if (!mountPathPattern.test(disk.mountPath) || disk.mountPath.includes('..')) {
      throw new UnderstudyError(
        'INVALID_ARGUMENT',
        `disk ${disk.name}: mount path "${disk.mountPath}" must be absolute and use only letters, digits, . _ - /`,
      );
    }
    if (!Number.isInteger(disk.sizeMb) || disk.sizeMb < 1)
      throw new UnderstudyError('INVALID_ARGUMENT', `disk ${disk.name}: size ${disk.sizeMb} MB is invalid`);
  }
  for (const name of new Set(disks.map((d) => d.pool))) {
    const pool = pools.find((p) => p.name === name);
    if (!pool)
      throw new UnderstudyError('INVALID_ARGUMENT', `pool: there is no storage pool "${name}"`, {
        hint: `Pools: ${pools.map((p) => p.name).join(', ')}`,
      });
    const committed = listLcs(db)
      .flatMap((lc) => lc.disks)
      .filter((d) => d.pool === name)
      .reduce((s, d) => s + d.sizeMb, 0);
    const asked = disks.filter((d) => d.pool === name).reduce((s, d) => s + d.sizeMb, 0);
    const poolMb = Math.floor(pool.sizeBytes / 1024 / 1024);
    if (asked + committed > poolMb) {
      throw new UnderstudyError(
        'RESOURCES_EXCEEDED',
        `disks: ${asked} MB asked in pool "${name}", but only ${poolMb - committed} MB of its ${poolMb} MB are not given to other disks`,
      );
    }
  }

  const nics: NicSpec[] = [];
  const addresses = r.addresses ?? [];
  if (addresses.length > 0)
    nics.push(validateNic({ db, network, lc: r.name, name: 'eth0', addresses, mac: r.mac }));

  return {
    name: r.name,
    driver: r.driver ?? options.driver ?? defaultDriver,
    image: r.image,
    cpus,
    cpuSharePercent: share,
    memoryMb,
    role: r.role ?? 'idle',
    disks,
    nics,
    services: validateServices(r.services ?? [], 'services'),
  };
}
