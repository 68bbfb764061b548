/**
 * The role of an LC's disk: `system` for the disk mounted at `/` (what the LC boots from), otherwise
 * the disk's name (`app` and any extra disk). A run copies every disk of the LC by role, onto the
 * standby's disk the standby search mapped it to.
 */
import type { DiskSpec, LcSpec } from '../drivers/index.ts';

export const systemRole = 'system';

export function diskRole(disk: DiskSpec): string {
  return disk.mountPath === '/' ? systemRole : disk.name;
}

/** The LC's disks, the system disk first, then the others in their order. */
export function disksByRole(lc: LcSpec): DiskSpec[] {
  return [...lc.disks].sort(
    (a, b) => Number(diskRole(b) === systemRole) - Number(diskRole(a) === systemRole),
  );
}

/** The disks that hold data (every disk but the system disk). */
export function dataDisks(lc: LcSpec): DiskSpec[] {
  return lc.disks.filter((d) => diskRole(d) !== systemRole);
}
