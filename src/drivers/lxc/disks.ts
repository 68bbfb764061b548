/** The btrfs subvolumes an LXC LC's disks are made of, and the image copies they are snapshots of. */
import fs from 'node:fs';
import path from 'node:path';
import { exec } from '../../core/index.ts';

/** Deletes every btrfs subvolume at or under `dir` (deepest first), then the directory. */
export async function deleteSubvolumesUnder(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  const subvolumes: string[] = [];
  const walk = (current: string, depth: number): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const full = path.join(current, entry.name);
      if (fs.statSync(full).ino === 256)
        subvolumes.push(full); // a btrfs subvolume root
      else if (depth < 3) walk(full, depth + 1);
    }
  };
  walk(dir, 0);
  for (const subvolume of subvolumes.reverse()) await exec(['btrfs', 'subvolume', 'delete', subvolume]);
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Gives every directory above `target` the search bit for others (never the read bit), so that the
 * LC's root, an unprivileged uid on the host, can reach its disks and its control channel.
 */
export function makeTraversable(target: string): void {
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const mode = fs.statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) fs.chmodSync(dir, mode | 0o001);
    if (dir === '/') break;
  }
}
