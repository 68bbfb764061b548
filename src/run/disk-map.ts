/**
 * Which disk of one LC goes onto which disk of the other. A run copies every disk LC1 declares onto
 * the standby's disk that the standby search mapped it to (`diskMap`, kept in the run's facts: the
 * standby's disk for a role may have another name, size and place); without a map (a standalone
 * switch) a disk goes onto the other LC's disk with the same role.
 */
import { UnderstudyError } from '../core/index.ts';
import type { DiskSpec } from '../drivers/index.ts';
import { diskRole, systemRole, type LcRecord } from '../inventory/index.ts';
import type { Db } from '../store/index.ts';
import { RunJournal } from './journal.ts';

/** Disk names of one LC → disk names of the other. */
export type DiskMap = Readonly<Record<string, string>>;

/** The map the other way round (the rollback's, from the standby back to LC1). */
export function invertDiskMap(map: DiskMap | undefined): DiskMap | undefined {
  return map && Object.fromEntries(Object.entries(map).map(([from, to]) => [to, from]));
}

/**
 * The disk of `to` that receives `disk` of `from`: the one `map` names, else the one with the same
 * role. DISK_NOT_FOUND when `to` has none.
 */
export function counterpart(from: LcRecord, to: LcRecord, disk: DiskSpec, map?: DiskMap): DiskSpec {
  const mapped = map?.[disk.name];
  const target = mapped
    ? to.disks.find((d) => d.name === mapped)
    : to.disks.find((d) => diskRole(d) === diskRole(disk));
  if (!target)
    throw new UnderstudyError(
      'DISK_NOT_FOUND',
      mapped
        ? `"${to.name}" has no disk "${mapped}" to receive "${from.name}"'s ${disk.name} disk (the run's disk map)`
        : `"${to.name}" has no ${diskRole(disk)} disk to receive "${from.name}"'s ${disk.name} disk`,
      { hint: `Give ${to.name} a disk for it (\`understudy lc show ${to.name}\` lists its disks).` },
    );
  return target;
}

/** The name of the LC's system disk (the one mounted at /). */
export function systemDiskOf(lc: LcRecord): string {
  const disk = lc.disks.find((d) => diskRole(d) === systemRole);
  if (!disk)
    throw new UnderstudyError('DISK_NOT_FOUND', `"${lc.name}" has no system disk (none is mounted at /)`);
  return disk.name;
}

/**
 * The disk map of a switch between `from` and `to` that a patch run made (forward or back), from the
 * latest run of that pair; undefined for a switch of no run.
 */
export function diskMapOfSwitch(db: Db, from: string, to: string): DiskMap | undefined {
  const row = db
    .prepare(
      'SELECT id, lc FROM runs WHERE (lc = ? AND standby = ?) OR (lc = ? AND standby = ?) ORDER BY created_at DESC LIMIT 1',
    )
    .get(from, to, to, from) as { id: string; lc: string } | undefined;
  if (!row) return undefined;
  const map = new RunJournal(db).get(row.id).facts.diskMap;
  return row.lc === from ? map : invertDiskMap(map);
}
