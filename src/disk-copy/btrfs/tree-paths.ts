/** Paths inside a disk's tree, relative to its top ('.' for the top itself). */
import fs from 'node:fs/promises';
import path from 'node:path';

export const join = (root: string, relative: string): string =>
  relative === '.' ? root : path.join(root, relative);

/** Every entry below `relative` in `root` (its whole subtree), added to `into`. */
export async function addSubtree(root: string, relative: string, into: Set<string>): Promise<void> {
  const entries = await fs.readdir(join(root, relative), { withFileTypes: true });
  for (const entry of entries) {
    const child = relative === '.' ? entry.name : path.join(relative, entry.name);
    into.add(child);
    if (entry.isDirectory()) await addSubtree(root, child, into);
  }
}
