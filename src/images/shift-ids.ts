/**
 * Shifts the owners of a root tree copied from an unprivileged container back to what they are inside
 * it (host uid base+N → N), because understudy's disks keep the tree as the LC sees it and map ids at
 * mount time (idmapped mounts). Never follows a link; set-id bits that chown clears are put back.
 * Not carried over: file capabilities (security.capability), which chown removes.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface IdShift {
  uidBase: number;
  gidBase: number;
  size: number;
}

/** Returns how many entries changed owner. */
export function shiftIdsDown(root: string, shift: IdShift): number {
  let changed = 0;
  const down = (id: number, base: number): number => (id >= base && id < base + shift.size ? id - base : id);
  const visit = (file: string): void => {
    const stat = fs.lstatSync(file);
    const uid = down(stat.uid, shift.uidBase);
    const gid = down(stat.gid, shift.gidBase);
    if (uid !== stat.uid || gid !== stat.gid) {
      fs.lchownSync(file, uid, gid);
      if (!stat.isSymbolicLink() && (stat.mode & 0o6000) !== 0) fs.chmodSync(file, stat.mode & 0o7777);
      changed++;
    }
    if (stat.isDirectory()) for (const entry of fs.readdirSync(file)) visit(path.join(file, entry));
  };
  visit(root);
  return changed;
}
