/**
 * What changed in a btrfs subvolume after a transaction, found without any snapshot: the pool's
 * buffered data is written out and committed, and the subvolume's tree is searched for the items
 * newer than that transaction (transid-search.py, which does the ioctls Node has no binding for).
 * The search skips every node older than the transaction, so its cost follows the change, not the
 * number of files, and no snapshot has to share the tree: the writes of the service and of the sync
 * then copy no shared node (docs/disk-copy.md, "Final sync").
 *
 * `planTransidSync` turns the changed inodes into what a sync must do on the target, falling back to
 * a whole-file copy whenever the new extents cannot be all that changed (bench/transid-rules-probe.py
 * shows each case on this kernel).
 */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { UnderstudyError, exec, isUnderstudyError } from '../../core/index.ts';

const HELPER = fileURLToPath(new URL('./transid-search.py', import.meta.url));

/** More changed inodes than this and the search gives up (the caller falls back). */
const DEFAULT_LIMIT = 100_000;

const inodeSchema = z.object({
  ino: z.number().int(),
  kind: z.enum(['dir', 'file', 'symlink', 'other']),
  /** Created after the transaction searched from. */
  created: z.boolean(),
  size: z.number().int().nonnegative(),
  /** Bytes allocated to its extents (a punched hole lowers it without a new extent). */
  nbytes: z.number().int().nonnegative(),
  nlink: z.number().int().nonnegative(),
  /** Overwritten in place: its extents keep their transid. */
  nocow: z.boolean(),
  /** Every name, relative to the subvolume ('' for its top). */
  paths: z.array(z.string()),
  /** A name whose directory entry is newer: created, renamed or linked since. */
  newerEntry: z.boolean(),
  /** Its data is in the metadata (a new inline extent). */
  inline: z.boolean(),
  /** [offset, length] of its file extents newer than the transaction searched from. */
  extents: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])),
});
export type ChangedInode = z.infer<typeof inodeSchema>;

const lineSchema = z.union([
  z.object({ transid: z.number().int().positive() }),
  z.object({ inode: inodeSchema }),
  z.object({ overflow: z.literal(true), reason: z.string().optional() }),
]);

export type TransidChanges =
  /** The committed transaction (the next search starts after it) and the inodes changed before it. */
  | { transid: number; inodes: ChangedInode[]; overflow?: undefined }
  /** Too many changes, or a name the list cannot carry: sync without the list. */
  | { transid: number; overflow: true; reason: string };

/**
 * Commits the pool of `subvolume` (its buffered data written out first) and lists the inodes changed
 * in it after transaction `since`. Throws DISK_SYNC_FAILED when the search fails.
 */
export async function changesSince(
  subvolume: string,
  since: number,
  options: { limit?: number; timeoutMs?: number } = {},
): Promise<TransidChanges> {
  const limit = options.limit ?? DEFAULT_LIMIT;
  let stdout: string;
  try {
    stdout = (
      await exec(['python3', HELPER, subvolume, String(since), '--limit', String(limit)], {
        timeoutMs: options.timeoutMs ?? 120_000,
        // An inode's line is bounded by its names; the limit bounds the lines.
        maxBuffer: 256 << 20,
      })
    ).stdout;
  } catch (error) {
    if (!isUnderstudyError(error)) throw error;
    throw new UnderstudyError(
      'DISK_SYNC_FAILED',
      `Finding what changed in ${subvolume} failed: ${error.message}`,
      {
        cause: error,
        hint: 'Nothing was written. Check that the path is a btrfs subvolume and python3 is installed, then run the sync again.',
      },
    );
  }
  let transid: number | undefined;
  const inodes: ChangedInode[] = [];
  for (const [n, line] of stdout.split('\n').entries()) {
    if (line === '') continue;
    const parsed = lineSchema.safeParse(parseJson(line));
    if (!parsed.success)
      throw new UnderstudyError(
        'DISK_SYNC_FAILED',
        `Finding what changed in ${subvolume}: line ${n + 1} of the search is not understood`,
        {
          hint: 'Nothing was written. Report it with the kernel version (uname -r).',
        },
      );
    const value = parsed.data;
    if ('transid' in value) transid = value.transid;
    else if (transid === undefined) break;
    else if ('overflow' in value)
      return { transid, overflow: true, reason: value.reason ?? `more than ${limit} inodes changed` };
    else inodes.push(value.inode);
  }
  if (transid === undefined)
    throw new UnderstudyError(
      'DISK_SYNC_FAILED',
      `Finding what changed in ${subvolume}: the search named no transaction`,
      {
        hint: 'Nothing was written. Report it with the kernel version (uname -r).',
      },
    );
  return { transid, inodes };
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

/** What a sync does on the target for a list of changed inodes. */
export interface TransidPlan {
  /** Directories whose names, attributes and times are made the source's (names gone are removed). */
  directories: string[];
  /** Paths copied whole (created, renamed or linked since, inline, nocow, hard-linked, not a regular file). */
  whole: string[];
  /**
   * Regular files patched in place: the ranges written (none: attributes and size only). The caller
   * then compares the allocated size with the source's, which a punched hole lowers without a new
   * extent, and copies the file whole when they differ.
   */
  patches: { relative: string; ranges: [number, number][]; size: number }[];
}

/** See TransidPlan; pure. */
export function planTransidSync(inodes: readonly ChangedInode[]): TransidPlan {
  const plan: TransidPlan = { directories: [], whole: [], patches: [] };
  for (const inode of inodes) {
    if (inode.kind === 'dir') {
      plan.directories.push(...inode.paths.map((p) => (p === '' ? '.' : p)));
      continue;
    }
    const whole =
      inode.kind !== 'file' ||
      inode.created ||
      inode.inline ||
      inode.nocow ||
      inode.nlink > 1 ||
      inode.newerEntry;
    if (whole) plan.whole.push(...inode.paths);
    else
      for (const relative of inode.paths)
        plan.patches.push({ relative, ranges: inode.extents, size: inode.size });
  }
  plan.directories.sort();
  plan.whole.sort();
  plan.patches.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
  return plan;
}
