/**
 * The sync bases of disk pairs in the store (module 'disk-copy', table `sync_bases`): for two disks
 * that were made equal (a live copy, then each sync), either the read-only snapshot of each side at
 * that moment (snapshot bases), or each side's transaction then (transid bases: `transids`, no
 * snapshot kept; baseA and baseB are empty). An incremental sync compares each side's disk now with
 * its base, or searches each side for what changed after its transaction. The row also names the
 * snapshots a sync in progress creates (`pending`), so that the recovery after a crash removes them.
 *
 * States:
 * - `ready`: the bases are in place; `pending` lists leftovers still to remove (normally empty);
 * - `syncing`: a sync runs (or its process died); `pending` lists what it may have created.
 */
import type { Db } from '../store/index.ts';

export type SyncBaseState = 'ready' | 'syncing';

export interface SyncBase {
  /** `<disk a>|<disk b>`, the two disk keys (`lc/disk`) in sorted order. */
  pair: string;
  diskA: string;
  baseA: string;
  diskB: string;
  baseB: string;
  generation: number;
  state: SyncBaseState;
  /** Holder directories (each with a snapshot inside) that are not bases and must be removed. */
  pending: string[];
  /** See BaseAhead; absent when the two bases hold the same tree. */
  ahead?: BaseAhead;
  /** Transid bases, by disk key (see TransidBase); absent for snapshot bases. */
  transids?: Record<string, TransidBase>;
}

/**
 * One disk's transid base: the disk (its subvolume's UUID) held, after transaction `transid`, what
 * the other disk held after its own; what it changed after it is still to carry.
 */
export interface TransidBase {
  uuid: string;
  transid: number;
  /**
   * The paths the last sync wrote on this disk after `transid` (with the source's content), and the
   * transaction that committed them: a change to one of them before `through` is that sync's, not
   * the disk's own; one in `through` too, unless `marks` is there. A sync that fsynced its writes
   * instead of committing them (`marks`) shares `through` with whatever the disk wrote next: a
   * change in it is the sync's only for a regular file that still holds what its mark says.
   * Absent when the disk's transaction is past the sync's writes.
   */
  wrote?: { through: number; paths: string[]; marks?: Record<string, string> };
}

/**
 * One disk of the pair is ahead of its base: a final sync wrote these paths into it after its base was
 * taken (the target of a final sync is re-based on its snapshot before the copy, since it is held and
 * takes no snapshot after it). Everywhere else the two bases hold the same tree. The next sync of the
 * pair syncs these paths again whatever the two sides' changes say (a file the final sync created and
 * the disk removed since leaves no trace in its changes since its base), and may patch the files of
 * `patched` onward from this disk (each was patched in place there after its base: its changes since
 * the base cover every byte in which the two bases differ).
 */
export interface BaseAhead {
  /** The disk key (`lc/disk`) whose base lags its content. */
  disk: string;
  /** Every path the final sync wrote (copied, patched or removed) into it. */
  paths: string[];
  /** Those of `paths` it patched in place (regular files, same inode). */
  patched: string[];
}

interface Row {
  pair: string;
  disk_a: string;
  base_a: string;
  disk_b: string;
  base_b: string;
  generation: number;
  state: SyncBaseState;
  pending: string;
  ahead: string | null;
  transids: string | null;
}

/** The pair key of two disks (the same whichever way the sync goes). */
export function pairKey(one: string, other: string): string {
  return [one, other].sort().join('|');
}

const toBase = (row: Row): SyncBase => ({
  pair: row.pair,
  diskA: row.disk_a,
  baseA: row.base_a,
  diskB: row.disk_b,
  baseB: row.base_b,
  generation: row.generation,
  state: row.state,
  pending: JSON.parse(row.pending) as string[],
  ...(row.ahead ? { ahead: JSON.parse(row.ahead) as BaseAhead } : {}),
  ...(row.transids ? { transids: JSON.parse(row.transids) as Record<string, TransidBase> } : {}),
});

export function getSyncBase(db: Db, one: string, other: string): SyncBase | undefined {
  const row = db.prepare('SELECT * FROM sync_bases WHERE pair = ?').get(pairKey(one, other)) as
    Row | undefined;
  return row ? toBase(row) : undefined;
}

export function listSyncBases(db: Db): SyncBase[] {
  return (db.prepare('SELECT * FROM sync_bases ORDER BY pair').all() as Row[]).map(toBase);
}

/** The base of `disk` in the pair (`disk` must be one of its two disks). */
export function baseOf(base: SyncBase, disk: string): string {
  return base.diskA === disk ? base.baseA : base.baseB;
}

/**
 * Records new bases for the two disks (after a copy or a sync), in state `ready`; `leftovers` (the
 * previous bases and the sync's scratch snapshots) are kept in `pending` until removed; `ahead` says
 * where the new bases differ (none: they hold the same tree).
 */
export function putSyncBase(
  db: Db,
  o: {
    from: string;
    fromBase: string;
    to: string;
    toBase: string;
    generation: number;
    leftovers: string[];
    ahead?: BaseAhead;
    /** Transid bases by disk key; `fromBase` and `toBase` are then empty. */
    transids?: Record<string, TransidBase>;
  },
): void {
  const [a, b] = o.from < o.to ? [o.from, o.to] : [o.to, o.from];
  const baseOfDisk = (disk: string): string => (disk === o.from ? o.fromBase : o.toBase);
  const keep = new Set([o.fromBase, o.toBase]);
  db.prepare(
    `INSERT INTO sync_bases (pair, disk_a, base_a, disk_b, base_b, generation, state, pending, ahead, transids, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, 'ready', ?, ?, ?, ?)
     ON CONFLICT(pair) DO UPDATE SET disk_a = excluded.disk_a, base_a = excluded.base_a, disk_b = excluded.disk_b,
       base_b = excluded.base_b, generation = excluded.generation, state = 'ready', pending = excluded.pending,
       ahead = excluded.ahead, transids = excluded.transids, updated_at = excluded.updated_at`,
  ).run(
    pairKey(a, b),
    a,
    baseOfDisk(a),
    b,
    baseOfDisk(b),
    o.generation,
    JSON.stringify([...new Set(o.leftovers)].filter((p) => !keep.has(p))),
    o.ahead ? JSON.stringify(o.ahead) : null,
    o.transids ? JSON.stringify(o.transids) : null,
    new Date().toISOString(),
  );
}

/** Marks a sync of the pair as running; `scratch` are the holders it is about to create. */
export function startSync(db: Db, pair: string, scratch: string[]): void {
  db.prepare(`UPDATE sync_bases SET state = 'syncing', pending = ?, updated_at = ? WHERE pair = ?`).run(
    JSON.stringify(scratch),
    new Date().toISOString(),
    pair,
  );
}

/** The pair is back to `ready` with nothing pending (its scratch and leftovers are gone). */
export function settleSyncBase(db: Db, pair: string): void {
  db.prepare(`UPDATE sync_bases SET state = 'ready', pending = '[]', updated_at = ? WHERE pair = ?`).run(
    new Date().toISOString(),
    pair,
  );
}

export function deleteSyncBase(db: Db, pair: string): void {
  db.prepare('DELETE FROM sync_bases WHERE pair = ?').run(pair);
}

/** Whether the pair's bases are transactions (no snapshot kept). */
export const hasTransidBases = (base: SyncBase): boolean => base.transids !== undefined;
