/**
 * Per-LC uid/gid ranges for unprivileged LCs, taken from root's entries in /etc/subuid and /etc/subgid.
 * Each LC gets a range of its own, so that root of one LC is not the same host uid as root of another.
 * Ranges are leased machine-wide (one file per range in a lease directory, created exclusively), because
 * several understudy state directories can share one host; a lease whose owner no longer exists is taken
 * over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, isErrno } from '../../core/index.ts';
import type { LxcIdmap } from './config.ts';

export const idmapSize = 65536;

export interface SubidRange {
  start: number;
  count: number;
}

/** root's ranges in a subuid/subgid file (lines "name-or-uid:start:count"). */
export function parseSubids(text: string, owner = 'root'): SubidRange[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(':'))
    .filter(([who]) => who === owner || (owner === 'root' && who === '0'))
    .map(([, start, count]) => ({ start: Number(start), count: Number(count) }))
    .filter((r) => Number.isInteger(r.start) && Number.isInteger(r.count) && r.count > 0);
}

/** Start of every whole block of `size` ids contained in both the uid and the gid ranges. */
export function candidateBases(uids: SubidRange[], gids: SubidRange[], size = idmapSize): number[] {
  const inside = (ranges: SubidRange[], base: number): boolean =>
    ranges.some((r) => base >= r.start && base + size <= r.start + r.count);
  const bases: number[] = [];
  for (const r of uids) {
    for (let base = r.start; base + size <= r.start + r.count; base += size)
      if (inside(gids, base)) bases.push(base);
  }
  return bases;
}

export interface IdmapLeaseOptions {
  leaseDir: string;
  subuidFile: string;
  subgidFile: string;
}

function readSubids(file: string): SubidRange[] {
  try {
    return parseSubids(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
}

/**
 * Leases a free range for `owner` (a path identifying the LC: its LXC directory). Returns the range
 * already leased to that owner if there is one.
 */
export function leaseIdmap(options: IdmapLeaseOptions, owner: string): LxcIdmap {
  const bases = candidateBases(readSubids(options.subuidFile), readSubids(options.subgidFile));
  if (bases.length === 0) {
    throw new UnderstudyError(
      'LXC_IDMAP_UNAVAILABLE',
      `root has no range of ${idmapSize} ids in both ${options.subuidFile} and ${options.subgidFile}`,
      {
        hint: 'Give root subordinate ids, e.g. `usermod --add-subuids 1000000-68108863 --add-subgids 1000000-68108863 root` (scripts/install-deps.sh does this).',
      },
    );
  }
  fs.mkdirSync(options.leaseDir, { recursive: true, mode: 0o700 });
  const existing = findLease(options.leaseDir, owner);
  if (existing !== undefined) return { uidBase: existing, gidBase: existing, size: idmapSize };
  for (const base of bases) {
    const file = path.join(options.leaseDir, String(base));
    try {
      fs.writeFileSync(file, owner, { flag: 'wx' });
      return { uidBase: base, gidBase: base, size: idmapSize };
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    // Taken: take it over only when its owner is gone (a state directory removed without a destroy).
    const holder = fs.readFileSync(file, 'utf8');
    if (!fs.existsSync(holder)) {
      const claim = `${file}.claim-${process.pid}`;
      fs.writeFileSync(claim, owner);
      fs.renameSync(claim, file);
      if (fs.readFileSync(file, 'utf8') === owner) return { uidBase: base, gidBase: base, size: idmapSize };
    }
  }
  throw new UnderstudyError(
    'LXC_IDMAP_UNAVAILABLE',
    `All ${bases.length} id ranges of root in ${options.subuidFile} are leased to LCs (${options.leaseDir})`,
    { hint: 'Destroy LCs that are not needed, or give root more subordinate ids.' },
  );
}

function findLease(leaseDir: string, owner: string): number | undefined {
  for (const file of fs.readdirSync(leaseDir)) {
    if (!/^\d+$/.test(file)) continue;
    if (fs.readFileSync(path.join(leaseDir, file), 'utf8') === owner) return Number(file);
  }
  return undefined;
}

/** Gives the range leased to `owner` back. Idempotent. */
export function releaseIdmap(options: Pick<IdmapLeaseOptions, 'leaseDir'>, owner: string): void {
  if (!fs.existsSync(options.leaseDir)) return;
  const base = findLease(options.leaseDir, owner);
  if (base !== undefined) fs.rmSync(path.join(options.leaseDir, String(base)), { force: true });
}
