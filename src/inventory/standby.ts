/**
 * Standby search (seed step 701): which unused LCs can stand in for a given LC. A candidate covers the
 * target when it has at least the target's CPU share and memory, a distinct disk of at least the size of
 * each of the target's disks, and a NIC on each network the target is on.
 */
import type { DiskSpec } from '../drivers/index.ts';
import { dataDisks, diskRole, systemRole } from './disk-roles.ts';
import type { LcRecord } from './lc-record.ts';

export interface StandbyCandidate {
  lc: string;
  /** Resources the candidate has beyond what the target needs (lower = better fit). */
  excess: { cpuSharePercent: number; memoryMb: number; diskMb: number };
  /** Target disk → candidate disk. */
  diskMap: Record<string, string>;
}

export interface StandbyRejection {
  lc: string;
  reasons: string[];
}

export interface StandbySearchResult {
  target: string;
  candidates: StandbyCandidate[];
  rejected: StandbyRejection[];
}

/**
 * Assigns each target disk a distinct candidate disk of the same role where it can: the system disk
 * to the candidate's system disk (the one it boots from), a data disk to the candidate's disk of the
 * same name when it fits, otherwise the smallest fitting data disk left (largest target disks first).
 */
function matchDisks(
  target: LcRecord,
  candidate: LcRecord,
): { map: Record<string, string>; excessMb: number; missing: string[] } {
  const free = [...candidate.disks].sort((a, b) => a.sizeMb - b.sizeMb);
  const map: Record<string, string> = {};
  const missing: string[] = [];
  let excessMb = 0;
  const take = (index: number, disk: DiskSpec): void => {
    const [found] = free.splice(index, 1);
    if (!found) return;
    map[disk.name] = found.name;
    excessMb += found.sizeMb - disk.sizeMb;
  };
  const system = target.disks.find((d) => diskRole(d) === systemRole);
  if (system) {
    const index = free.findIndex((d) => diskRole(d) === systemRole && d.sizeMb >= system.sizeMb);
    if (index < 0) missing.push(`no disk of at least ${system.sizeMb} MB for its ${system.name} disk`);
    else take(index, system);
  }
  for (const disk of dataDisks(target).sort((a, b) => b.sizeMb - a.sizeMb)) {
    const fits = (d: DiskSpec): boolean => diskRole(d) !== systemRole && d.sizeMb >= disk.sizeMb;
    const sameName = free.findIndex((d) => d.name === disk.name && fits(d));
    const index = sameName >= 0 ? sameName : free.findIndex(fits);
    if (index < 0) missing.push(`no disk of at least ${disk.sizeMb} MB for its ${disk.name} disk`);
    else take(index, disk);
  }
  return { map, excessMb, missing };
}

/** Why `candidate` cannot stand in for `target` (empty = it can). */
export function coverageGaps(
  target: LcRecord,
  candidate: LcRecord,
  inUse: ReadonlySet<string> = new Set(),
): string[] {
  const reasons: string[] = [];
  if (candidate.name === target.name) return ['it is the LC itself'];
  if (candidate.role === 'active') reasons.push('it is in use (role active)');
  else if (candidate.role === 'retired') reasons.push('it is kept as a rollback target (role retired)');
  else if (inUse.has(candidate.name)) reasons.push('it is taken by a patch run in progress');
  if (candidate.cpuSharePercent < target.cpuSharePercent) {
    reasons.push(`CPU share ${candidate.cpuSharePercent}% < ${target.cpuSharePercent}%`);
  }
  if (candidate.memoryMb < target.memoryMb)
    reasons.push(`memory ${candidate.memoryMb} MB < ${target.memoryMb} MB`);
  reasons.push(...matchDisks(target, candidate).missing);
  for (const bridge of new Set(target.nics.map((n) => n.bridge))) {
    if (!candidate.nics.some((n) => n.bridge === bridge)) {
      reasons.push(candidate.nics.length === 0 ? 'it has no NIC' : `it has no NIC on network ${bridge}`);
    }
  }
  return reasons;
}

/** Lists the LCs that can stand in for `target`, best fit first, and why every other LC cannot. */
export function findStandbys(
  target: LcRecord,
  all: readonly LcRecord[],
  inUse: ReadonlySet<string> = new Set(),
): StandbySearchResult {
  const candidates: StandbyCandidate[] = [];
  const rejected: StandbyRejection[] = [];
  for (const lc of all) {
    if (lc.name === target.name) continue;
    const reasons = coverageGaps(target, lc, inUse);
    if (reasons.length) {
      rejected.push({ lc: lc.name, reasons });
      continue;
    }
    const disks = matchDisks(target, lc);
    candidates.push({
      lc: lc.name,
      excess: {
        cpuSharePercent: lc.cpuSharePercent - target.cpuSharePercent,
        memoryMb: lc.memoryMb - target.memoryMb,
        diskMb: disks.excessMb,
      },
      diskMap: disks.map,
    });
  }
  // Best fit: the least spare memory, then CPU share, then disk; name breaks ties so the order is stable.
  candidates.sort(
    (a, b) =>
      a.excess.memoryMb - b.excess.memoryMb ||
      a.excess.cpuSharePercent - b.excess.cpuSharePercent ||
      a.excess.diskMb - b.excess.diskMb ||
      a.lc.localeCompare(b.lc),
  );
  return { target: target.name, candidates, rejected };
}
