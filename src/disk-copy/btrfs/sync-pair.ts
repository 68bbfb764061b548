/**
 * A sync between two btrfs disks with its bookkeeping: the bases recorded for the pair (see
 * sync-bases.ts) are checked and used, the sync's snapshots are named in the store before they are
 * made, and after a sync the pair is re-based on the source's cut and the target's state right after
 * the sync (so the next sync, in either direction, is incremental), the older bases removed.
 *
 * Snapshots live in `<lc dir>/.understudy-sync/<holder>/<snapshot>` beside each disk (a read-only
 * subvolume cannot be moved to another directory; its holder directory can).
 *
 * A data disk's pair (`sender-wins`) leaves its snapshots at its first sync after the copy (a
 * catch-up pass): the pair is re-based on each side's transaction instead (SyncBase.transids), and
 * its later syncs search each side for what changed after it (transid-pair.ts). No snapshot then
 * shares a data disk's tree when the switch's hold writes it: a write to a shared tree node copies
 * the node, and the number of such nodes on a path grows with the tree (docs/disk-copy.md).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  UnderstudyError,
  exec,
  isErrno,
  isUnderstudyError,
  processOwner,
  type Logger,
} from '../../core/index.ts';
import { liveLease, releaseLeases, takeLeases, withoutWaitingForDisk, type Db } from '../../store/index.ts';
import { formatBytes } from '../history.ts';
import {
  baseOf,
  deleteSyncBase,
  getSyncBase,
  listSyncBases,
  pairKey,
  putSyncBase,
  settleSyncBase,
  startSync,
  type SyncBase,
  type TransidBase,
} from '../sync-bases.ts';
import type { SyncConflictRule, SyncResult } from '../types.ts';
import { freeBytes, isSubvolume, removeStagingDir, settleDeletedSubvolumes, snapshot } from './btrfs.ts';
import { changedPaths, type ChangeSet } from './change-set.ts';
import { syncDisk } from './sync-disk.ts';
import { markOf, TransidSearcher, type TransidMark } from './transid.ts';
import { passByTransid } from './transid-pair.ts';

/** One side of a sync: its key (`lc/disk`), live subvolume and pool. */
export interface SyncSide {
  key: string;
  path: string;
  pool: { name: string; path: string };
}

export const syncDirOf = (disk: string): string => path.join(path.dirname(disk), '.understudy-sync');

const syncLease = (pair: string): string => `sync:${pair}`;

/** Removes the holder directory of a snapshot (and the snapshot). */
const removeHolder = (snapshotPath: string): Promise<void> => removeStagingDir(path.dirname(snapshotPath));

async function subvolumeIds(target: string): Promise<{ uuid: string; parent: string }> {
  const out = await exec(['btrfs', 'subvolume', 'show', target]);
  const field = (name: string): string =>
    new RegExp(`^\\s*${name}:\\s*(\\S+)`, 'm').exec(out.stdout)?.[1] ?? '-';
  return { uuid: field('UUID'), parent: field('Parent UUID') };
}

/** Whether `base` is a snapshot of `live`, or `live` a clone of `base`. */
async function descends(base: string, live: string): Promise<boolean> {
  if (!(await isSubvolume(base))) return false;
  const [b, l] = await Promise.all([subvolumeIds(base), subvolumeIds(live)]);
  return b.parent === l.uuid || l.parent === b.uuid;
}

/**
 * Bases this process knows to descend from the live disks (it checked them, or a sync of its own made
 * them), by pair, with the identity (device number) each live disk had then. Checking again costs
 * four `btrfs subvolume show`, which the final sync of a switch cannot afford inside its hold; a base
 * known here is trusted while both live disks keep their identity, for at most `trustMs`, and until
 * the disk store replaces a disk of the pair (forgetSyncTrust).
 */
const trusted = new Map<string, { bases: [string, string]; lives: [string, number][]; at: number }>();
const trustMs = 10 * 60_000;

async function deviceOf(p: string): Promise<number | undefined> {
  try {
    return (await fs.stat(p)).dev;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
}

async function trust(pair: string, bases: [string, string], lives: string[]): Promise<void> {
  const devices: [string, number][] = [];
  for (const live of lives) {
    const dev = await deviceOf(live);
    if (dev === undefined) return;
    devices.push([live, dev]);
  }
  trusted.set(pair, { bases, lives: devices, at: Date.now() });
}

async function isTrusted(pair: string, bases: [string, string], lives: string[]): Promise<boolean> {
  const known = trusted.get(pair);
  if (!known || Date.now() - known.at > trustMs) return false;
  if (known.bases[0] !== bases[0] || known.bases[1] !== bases[1]) return false;
  for (const live of lives) {
    const dev = known.lives.find(([p]) => p === live)?.[1];
    if (dev === undefined || (await deviceOf(live)) !== dev) return false;
  }
  const [a, b] = await Promise.all(bases.map((base) => isSubvolume(base)));
  return a === true && b === true;
}

/** Forgets what this process trusts about the bases of every pair with a disk at `live` (it is being replaced). */
export function forgetSyncTrust(live: string): void {
  for (const [pair, known] of trusted) if (known.lives.some(([p]) => p === live)) trusted.delete(pair);
}

async function usableBase(db: Db, from: SyncSide, to: SyncSide): Promise<SyncBase | undefined> {
  const base = getSyncBase(db, from.key, to.key);
  if (!base || base.baseA === '' || base.baseB === '') return undefined;
  const bases: [string, string] = [base.baseA, base.baseB];
  const lives = [from.path, to.path];
  if (await isTrusted(base.pair, bases, lives)) return base;
  const [a, b] = await Promise.all([
    descends(baseOf(base, from.key), from.path),
    descends(baseOf(base, to.key), to.path),
  ]);
  if (!(a && b)) return undefined;
  await trust(base.pair, bases, lives);
  return base;
}

/** The path of one snapshot of a sync, in its own holder directory (neither is created here). */
function holderPath(side: SyncSide, generation: number, kind: string): string {
  const dir = path.join(
    syncDirOf(side.path),
    `${path.basename(side.path)}-g${generation}-${kind}-${randomBytes(3).toString('hex')}`,
  );
  return path.join(dir, 'snap');
}

/** An ENOSPC from rsync or btrfs as POOL_FULL naming the target's pool; other errors unchanged. */
async function explainFull(error: unknown, from: SyncSide, to: SyncSide): Promise<unknown> {
  const text = isUnderstudyError(error)
    ? `${error.message} ${String(error.details.stderr ?? '')}`
    : String(error);
  if (!/No space left on device|ENOSPC/i.test(text)) return error;
  const free = await freeBytes(to.pool.path).catch(() => 0);
  return new UnderstudyError(
    'POOL_FULL',
    `The pool "${to.pool.name}" (${to.pool.path}) holding ${to.key} is full (${formatBytes(free)} free): the sync of ${from.key} onto ${to.key} stopped part-way`,
    {
      cause: error,
      details: { pool: to.pool.name, poolPath: to.pool.path, freeBytes: free },
      hint: `Nothing is lost: ${from.key} is untouched and keeps serving. Free space in the pool "${to.pool.name}" (or grow it), then run the sync (the switch) again.`,
    },
  );
}

/**
 * Records the snapshots a live copy ended with as the pair's first bases: their staging directories
 * are moved into each disk's sync directory; the pair's older bases are removed.
 */
export async function adoptCopyBases(
  db: Db,
  o: { from: SyncSide; to: SyncSide; source: string; destination: string },
): Promise<void> {
  const move = async (snapshotPath: string, side: SyncSide): Promise<string> => {
    const dir = path.join(
      syncDirOf(side.path),
      `${path.basename(side.path)}-g0-copy-${randomBytes(3).toString('hex')}`,
    );
    await fs.mkdir(path.dirname(dir), { recursive: true });
    await fs.rename(path.dirname(snapshotPath), dir);
    return path.join(dir, path.basename(snapshotPath));
  };
  const fromBase = await move(o.source, o.from);
  const toBase = o.destination === o.source ? fromBase : await move(o.destination, o.to);
  const previous = getSyncBase(db, o.from.key, o.to.key);
  const leftovers = previous ? [previous.baseA, previous.baseB, ...previous.pending].filter(Boolean) : [];
  putSyncBase(db, { from: o.from.key, fromBase, to: o.to.key, toBase, generation: 0, leftovers });
  await removeLeftovers(db, pairKey(o.from.key, o.to.key));
}

/**
 * After a live copy whose destination is a tree of its own (OpenCopyOptions.ownTree): the pair's
 * bases become the two disks' transactions at the cut, and any earlier bases are removed.
 */
export async function adoptCopyTransids(
  db: Db,
  o: { from: SyncSide; to: SyncSide; source: TransidBase; destination: TransidBase },
): Promise<void> {
  const previous = getSyncBase(db, o.from.key, o.to.key);
  const leftovers = previous ? [previous.baseA, previous.baseB, ...previous.pending].filter(Boolean) : [];
  putSyncBase(db, {
    from: o.from.key,
    fromBase: '',
    to: o.to.key,
    toBase: '',
    generation: 0,
    leftovers,
    transids: { [o.from.key]: o.source, [o.to.key]: o.destination },
  });
  await removeLeftovers(db, pairKey(o.from.key, o.to.key));
}

/** Removals of old sync bases in progress, by pair. */
const removals = new Map<string, Promise<unknown>>();

/** Resolves once the removals of old sync bases started by earlier syncs (of one pair, or of all) are done. */
export async function settleSyncs(pair?: string): Promise<void> {
  for (;;) {
    const pending = pair === undefined ? [...removals.values()] : [removals.get(pair)].filter(Boolean);
    if (pending.length === 0) return;
    await Promise.all(pending);
  }
}

function removeInBackground(db: Db, pair: string, logger: Logger | undefined): void {
  const removal = removeLeftovers(db, pair)
    .catch((error: unknown) =>
      logger?.warn({ err: error, pair }, 'could not remove the previous sync bases (the recovery will)'),
    )
    .finally(() => {
      if (removals.get(pair) === removal) removals.delete(pair);
    });
  removals.set(pair, removal);
}

async function removeLeftovers(db: Db, pair: string): Promise<void> {
  const row = listSyncBases(db).find((b) => b.pair === pair);
  if (!row) return;
  const keep = new Set([row.baseA, row.baseB]);
  for (const p of row.pending) if (!keep.has(p)) await removeHolder(p);
  settleSyncBase(db, pair);
}

/** How a final sync makes its writes durable on the target: see BtrfsDiskStoreOptions.finalDurable. */
export type FinalDurable = 'fsync' | 'commit';

/**
 * A final sync prepared before the hold of a switch (prepareFinal): the pair's lease is taken and the
 * sync's snapshots are named in the store, the target's snapshot `now` is taken and its changes since
 * its base are known. The final sync of the same pair in the same direction uses it; any other sync
 * of the pair drops it first.
 */
type PreparedFinal =
  | {
      kind: 'snapshots';
      from: string;
      to: string;
      base: SyncBase;
      generation: number;
      snapshots: { cut: string; now: string; after: string };
      received: ChangeSet;
    }
  /**
   * On transid bases: a last pass was made with the target held (the pair re-based after it), and
   * the search helper is up, so that the final sync starts no process and searches the source only.
   */
  | { kind: 'transids'; from: string; to: string; base: SyncBase; searcher: TransidSearcher };

const preparedFinals = new Map<string, PreparedFinal>();

/** Removes an unused prepared final sync of the pair (its snapshot; the lease stays this process's). */
async function dropPrepared(db: Db | undefined, pair: string): Promise<void> {
  const prepared = preparedFinals.get(pair);
  if (!prepared) return;
  preparedFinals.delete(pair);
  if (prepared.kind === 'transids') await prepared.searcher.close();
  else for (const p of Object.values(prepared.snapshots)) await removeHolder(p);
  if (db) settleSyncBase(db, pair);
}

/** Takes the pair's lease and names the sync's snapshots in the store, in one write to disk. */
function leaseSync(
  db: Db,
  o: { pair: string; from: SyncSide; to: SyncSide; base: SyncBase | undefined; generation: number },
  scratch: string[],
): void {
  const owner = processOwner().id;
  const held = db
    .transaction(() => {
      const blocking = takeLeases(db, [syncLease(o.pair)], owner, `sync ${o.from.key} → ${o.to.key}`);
      if (blocking) return blocking;
      if (!o.base)
        putSyncBase(db, {
          from: o.from.key,
          fromBase: '',
          to: o.to.key,
          toBase: '',
          generation: o.generation,
          leftovers: [],
        });
      startSync(db, o.pair, [...scratch, ...(o.base?.pending ?? [])]);
      return undefined;
    })
    .immediate();
  if (held)
    throw new UnderstudyError(
      'DISK_SYNC_FAILED',
      `${o.from.key} and ${o.to.key} are being synced by another process`,
      {
        hint: `Wait for process ${held.owner.split(':')[0] ?? '?'} to finish.`,
      },
    );
}

/** How long the preparation of a final sync waits for the pools' cleaners (see prepareFinal). */
const cleanerWaitMs = 30_000;

/**
 * Does ahead of a final sync (SyncOptions.final) what does not wait for the source's last write, while
 * the target is already held (nobody writes it): the lease and the store's record of the snapshots,
 * the target's snapshot and its changes since its base. The final sync inside the hold then takes
 * one snapshot (the source's cut) and one metadata send. Nothing is prepared without a db or a base,
 * or for a `receiver-wins` pair (its final sync is a plain one).
 *
 * First it waits until both pools' cleaners have dropped the snapshots deleted so far (the previous
 * bases of the catch-up passes and of every other pair's syncs): the cut's snapshot commits a
 * transaction, and a commit while the cleaner drops a deleted snapshot waits for it and writes what
 * it freed — which grows with the number of leaves the catch-up passes changed, so with the tree (a
 * snapshot of a 1,000,000-file disk cost several times one of a 1,000-file disk while the cleaner
 * ran, the same once it was done: docs/disk-copy.md).
 * A cleaner not done within `cleanerWaitMs` is logged and the preparation goes on.
 */
export async function prepareFinal(o: {
  db?: Db;
  from: SyncSide;
  to: SyncSide;
  rule: SyncConflictRule;
  logger?: Logger;
}): Promise<void> {
  const pair = pairKey(o.from.key, o.to.key);
  await dropPrepared(o.db, pair);
  if (!o.db || o.rule !== 'sender-wins') return;
  // Every pair's removals (a system disk's previous bases may lie in the same pool).
  await settleSyncs();
  const pools = [...new Set([o.from.pool.path, o.to.pool.path])];
  const settled = await Promise.all(pools.map((p) => settleDeletedSubvolumes(p, cleanerWaitMs)));
  const busy = pools.filter((_, i) => !settled[i]);
  if (busy.length)
    o.logger?.warn(
      { pools: busy, waitedMs: cleanerWaitMs },
      'the btrfs cleaner is still dropping deleted snapshots: the final sync snapshot may take longer',
    );
  const row = getSyncBase(o.db, o.from.key, o.to.key);
  if (row?.transids) return prepareTransidFinal({ ...o, db: o.db, pair, row });
  const base = await usableBase(o.db, o.from, o.to);
  if (!base) return;
  const generation = base.generation + 1;
  const snapshots = {
    cut: holderPath(o.from, generation, 'cut'),
    now: holderPath(o.to, generation, 'now'),
    after: holderPath(o.to, generation, 'after'),
  };
  const scratch = Object.values(snapshots);
  leaseSync(o.db, { pair, from: o.from, to: o.to, base, generation }, scratch);
  try {
    await Promise.all(scratch.map((p) => fs.mkdir(path.dirname(p), { recursive: true })));
    await snapshot({ source: o.to.path, target: snapshots.now, readOnly: true });
    const received = await changedPaths(baseOf(base, o.to.key), snapshots.now);
    preparedFinals.set(pair, {
      kind: 'snapshots',
      from: o.from.key,
      to: o.to.key,
      base,
      generation,
      snapshots,
      received,
    });
  } catch (error) {
    for (const p of scratch) await removeHolder(p).catch(() => undefined);
    settleSyncBase(o.db, pair);
    releaseLeases(o.db, [syncLease(pair)], processOwner().id);
    throw error;
  }
}

/** Syncs `to` from `from` (see sync-disk.ts); without a db (or a base) the sync is whole. */
export async function syncPair(o: {
  db?: Db;
  from: SyncSide;
  to: SyncSide;
  rule: SyncConflictRule;
  /** The target is held until the caller lets it go: see SyncDiskOptions.final. */
  final?: boolean;
  /** See SyncOptions.deferDurability. */
  deferDurability?: boolean;
  /** See BtrfsDiskStoreOptions.finalDurable. */
  finalDurable?: FinalDurable;
  logger?: Logger;
}): Promise<SyncResult> {
  const pair = pairKey(o.from.key, o.to.key);
  const started = performance.now();
  const ready = preparedFinals.get(pair);
  const prepared =
    ready && o.final && o.db && ready.from === o.from.key && ready.to === o.to.key ? ready : undefined;
  if (prepared) preparedFinals.delete(pair);
  else await dropPrepared(o.db, pair);
  if (!prepared) await settleSyncs(pair);
  if (o.db && o.rule === 'sender-wins') {
    const row = prepared?.kind === 'transids' ? prepared.base : getSyncBase(o.db, o.from.key, o.to.key);
    if (row?.transids) {
      const done = await syncTransidPair({
        ...o,
        db: o.db,
        pair,
        row,
        ...(prepared?.kind === 'transids' ? { searcher: prepared.searcher } : {}),
        started,
      });
      // Otherwise the pair is synced whole below (no snapshot base), and re-based on transids.
      if (done) return done;
    }
  }
  const snapshotsPrepared = prepared?.kind === 'snapshots' ? prepared : undefined;
  const [base, checkMs] = await (async (): Promise<[SyncBase | undefined, number]> => {
    if (snapshotsPrepared) return [snapshotsPrepared.base, 0];
    const t = performance.now();
    const found = o.db ? await usableBase(o.db, o.from, o.to) : undefined;
    return [found, performance.now() - t];
  })();
  const common = { from: o.from.key, to: o.to.key, rule: o.rule };
  if (!base && o.rule === 'receiver-wins') {
    return {
      ...common,
      method: 'skipped',
      reason: `no sync base for ${o.from.key} and ${o.to.key} (never copied, or replaced since): a whole sync would undo ${o.to.key}'s own changes`,
      snapshotMs: 0,
      diffMs: checkMs,
      copyMs: 0,
      verifyMs: 0,
      bytes: 0,
      files: 0,
      conflicts: { count: 0, paths: [] },
      generation: 0,
      durationMs: performance.now() - started,
    };
  }
  const owner = processOwner().id;
  const generation = snapshotsPrepared?.generation ?? (base ? base.generation + 1 : 0);
  const snapshots = snapshotsPrepared?.snapshots ?? {
    cut: holderPath(o.from, generation, 'cut'),
    now: holderPath(o.to, generation, 'now'),
    after: holderPath(o.to, generation, 'after'),
  };
  const scratch = [snapshots.cut, snapshots.now, snapshots.after];
  // One transaction (one write to disk): the lease, and the snapshots this sync is about to make
  // (already written when the sync was prepared).
  if (o.db && !snapshotsPrepared)
    leaseSync(o.db, { pair, from: o.from, to: o.to, base, generation }, scratch);
  let released = false;
  let storeMs: number | undefined;
  try {
    if (!snapshotsPrepared)
      await Promise.all(scratch.map((p) => fs.mkdir(path.dirname(p), { recursive: true })));
    // A data disk's pair leaves its snapshot bases at a sync outside a hold: each side's transaction
    // before the sync becomes its base (what either side changes after it is carried by the next sync).
    const marks =
      o.db && o.rule === 'sender-wins' && !o.final
        ? await Promise.all([markOf(o.from.path), markOf(o.to.path)])
        : undefined;
    const outcome = await syncDisk({
      source: o.from.path,
      target: o.to.path,
      ...(base ? { base: { source: baseOf(base, o.from.key), target: baseOf(base, o.to.key) } } : {}),
      snapshots,
      rule: o.rule,
      labels: { source: o.from.key, target: o.to.key },
      ...(o.final ? { final: true } : {}),
      ...(snapshotsPrepared ? { prepared: { received: snapshotsPrepared.received } } : {}),
      ...(base?.ahead && o.rule === 'sender-wins'
        ? {
            ahead: {
              side: base.ahead.disk === o.from.key ? ('source' as const) : ('target' as const),
              paths: base.ahead.paths,
              patched: base.ahead.patched,
            },
          }
        : {}),
    }).catch(async (error: unknown) => {
      throw await explainFull(error, o.from, o.to);
    });
    if (o.db) {
      const db = o.db;
      // Re-based on the source's cut and the target's state after the copy: the snapshot taken after
      // it, or, when nothing was copied, the target's snapshot before it (the same state). The
      // target's own changes so far are then part of its base (a system disk's patch is not carried
      // back by the switch back). A final sync takes no snapshot after the copy: the target is
      // re-based on its snapshot before it, and the paths it wrote are recorded as the target's lead
      // on its base (SyncBase.ahead), which the next sync, either way, syncs again and patches onward.
      // With the lease given back, in one write to disk (or, deferDurability, carried to the disk by
      // the caller's next write that waits for it).
      const previous = base ? [base.baseA, base.baseB, ...base.pending] : [];
      const bases = marks
        ? {
            fromBase: '',
            toBase: '',
            transids: { [o.from.key]: marks[0], [o.to.key]: marks[1] },
            generation,
            leftovers: [...previous, ...scratch],
          }
        : {
            fromBase: snapshots.cut,
            toBase: outcome.baseIsNow ? snapshots.now : snapshots.after,
            ...(outcome.ahead ? { ahead: { disk: o.to.key, ...outcome.ahead } } : {}),
            generation,
            leftovers: [...previous, outcome.baseIsNow ? snapshots.after : snapshots.now],
          };
      const t = performance.now();
      const write = (): void =>
        db
          .transaction(() => {
            putSyncBase(db, { from: o.from.key, to: o.to.key, ...bases });
            releaseLeases(db, [syncLease(pair)], owner);
          })
          .immediate();
      if (o.deferDurability) withoutWaitingForDisk(db, write);
      else write();
      storeMs = performance.now() - t;
      released = true;
    }
    if (o.db) {
      // The new bases are snapshots of the two live disks taken by this sync.
      const row = getSyncBase(o.db, o.from.key, o.to.key);
      if (row && !row.transids) await trust(pair, [row.baseA, row.baseB], [o.from.path, o.to.path]);
      // The previous bases and the scratch snapshot are removed after the sync returns (the switch
      // is waiting for it); they stay named in the store until gone, so a crash meanwhile leaves them
      // to the recovery. settleSyncs() waits for the removals in progress.
      removeInBackground(o.db, pair, o.logger);
    } else for (const p of scratch) await removeHolder(p);
    const result: SyncResult = {
      ...common,
      method: outcome.method,
      ...(outcome.method === 'whole'
        ? { reason: `no sync base for ${o.from.key} and ${o.to.key}: both trees were walked` }
        : {}),
      snapshotMs: outcome.snapshotMs,
      diffMs: outcome.diffMs + checkMs,
      copyMs: outcome.copyMs,
      verifyMs: outcome.verifyMs,
      bytes: outcome.bytes,
      files: outcome.files,
      conflicts: outcome.conflicts,
      generation,
      durationMs: performance.now() - started,
      ...(outcome.copier ? { copier: outcome.copier } : {}),
      ...(outcome.patched ? { patched: outcome.patched } : {}),
      ...(storeMs === undefined ? {} : { storeMs }),
    };
    o.logger?.info({ sync: result }, 'disk sync done');
    return result;
  } catch (error) {
    // The bases stay valid (the source is untouched; the target's partial sync is one more change of
    // the target since its base): remove this sync's snapshots and keep the pair ready for a re-run.
    for (const p of scratch) await removeHolder(p).catch(() => undefined);
    if (o.db) {
      if (base) settleSyncBase(o.db, pair);
      else deleteSyncBase(o.db, pair);
    }
    throw error;
  } finally {
    if (o.db && !released) releaseLeases(o.db, [syncLease(pair)], owner);
  }
}

/** The two sides' transid bases of a pair on transid bases, from `from`'s side. */
function transidBasesOf(
  row: SyncBase,
  from: SyncSide,
  to: SyncSide,
): { source: TransidBase; target: TransidBase } | undefined {
  const source = row.transids?.[from.key];
  const target = row.transids?.[to.key];
  return source && target ? { source, target } : undefined;
}

/** Writes the pair's new transid bases and gives the lease back, in one transaction. */
function putTransidBases(
  db: Db,
  o: { pair: string; from: SyncSide; to: SyncSide; row: SyncBase; marks: [TransidMark, TransidMark] },
  generation: number,
  release: boolean,
): void {
  db.transaction(() => {
    putSyncBase(db, {
      from: o.from.key,
      fromBase: '',
      to: o.to.key,
      toBase: '',
      transids: { [o.from.key]: o.marks[0], [o.to.key]: o.marks[1] },
      generation,
      leftovers: o.row.pending,
    });
    if (release) releaseLeases(db, [syncLease(o.pair)], processOwner().id);
  }).immediate();
}

/**
 * The preparation of a final sync on transid bases, the target held: a last pass while the source
 * still serves, after which the target's transaction is past the pass's writes (nobody else writes
 * it), and the search helper kept up. The final sync then searches the source alone, in a process
 * already running. The lease stays taken until the final sync ends (or the preparation is dropped).
 * On a pass that cannot go by transaction, nothing is prepared (the final sync syncs whole).
 */
async function prepareTransidFinal(o: {
  db: Db;
  pair: string;
  row: SyncBase;
  from: SyncSide;
  to: SyncSide;
  logger?: Logger;
}): Promise<void> {
  const bases = transidBasesOf(o.row, o.from, o.to);
  if (!bases) return;
  const generation = o.row.generation + 1;
  leaseSync(o.db, { pair: o.pair, from: o.from, to: o.to, base: o.row, generation }, []);
  const searcher = TransidSearcher.start();
  const giveUp = async (): Promise<void> => {
    await searcher.close().catch(() => undefined);
    settleSyncBase(o.db, o.pair);
    releaseLeases(o.db, [syncLease(o.pair)], processOwner().id);
  };
  try {
    await searcher.ready();
    const pass = await passByTransid({
      source: o.from.path,
      target: o.to.path,
      base: bases,
      searcher,
      live: true,
      targetHeld: true,
    });
    if (pass.fallback !== undefined) {
      o.logger?.warn({ pair: o.pair, reason: pass.fallback }, 'the final sync cannot go by transaction');
      await giveUp();
      return;
    }
    putTransidBases(o.db, { ...o, marks: [pass.source, pass.target] }, generation, false);
    const base = getSyncBase(o.db, o.from.key, o.to.key)!;
    preparedFinals.set(o.pair, { kind: 'transids', from: o.from.key, to: o.to.key, base, searcher });
  } catch (error) {
    await giveUp();
    throw await explainFull(error, o.from, o.to);
  }
}

/**
 * A sync on transid bases (transid-pair.ts), with the pair's lease (taken by the preparation of a
 * final sync, else here) and its new bases written as SyncOptions.deferDurability says. Resolves
 * undefined, having written nothing, when the pair must be synced whole (a disk replaced, too many
 * changes, what only rsync copies). A failure leaves the bases as they were: running the sync again
 * carries what this one wrote half-way (the target's changes since its transaction).
 */
async function syncTransidPair(o: {
  db: Db;
  pair: string;
  row: SyncBase;
  from: SyncSide;
  to: SyncSide;
  final?: boolean;
  deferDurability?: boolean;
  finalDurable?: FinalDurable;
  logger?: Logger;
  /** The prepared final sync's helper: the target was held since its pass. */
  searcher?: TransidSearcher;
  started: number;
}): Promise<SyncResult | undefined> {
  const bases = transidBasesOf(o.row, o.from, o.to);
  if (!bases) return undefined;
  const owner = processOwner().id;
  const generation = o.row.generation + 1;
  if (!o.searcher) leaseSync(o.db, { pair: o.pair, from: o.from, to: o.to, base: o.row, generation }, []);
  const searcher = o.searcher ?? TransidSearcher.start();
  let released = false;
  try {
    const pass = await passByTransid({
      source: o.from.path,
      target: o.to.path,
      base: bases,
      searcher,
      live: !o.final,
      // A final sync's target is held until the caller lets it go.
      targetHeld: o.final === true,
      targetUnchanged: o.searcher !== undefined,
      // Inside the hold the target's writes are fsynced, not committed (a commit grows with the tree).
      fsyncTarget: o.final === true && o.finalDurable !== 'commit',
    }).catch(async (error: unknown) => {
      const explained = await explainFull(error, o.from, o.to);
      if (explained instanceof UnderstudyError) throw explained;
      throw new UnderstudyError(
        'DISK_SYNC_FAILED',
        `The sync of ${o.from.key} onto ${o.to.key} failed: ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
          hint: `${o.from.key} is untouched. Fix the cause and run the sync again: it carries what is still missing.`,
        },
      );
    });
    if (pass.fallback !== undefined) {
      o.logger?.warn({ pair: o.pair, reason: pass.fallback }, 'syncing the pair whole');
      settleSyncBase(o.db, o.pair);
      return undefined;
    }
    const t = performance.now();
    const write = (): void =>
      putTransidBases(o.db, { ...o, marks: [pass.source, pass.target] }, generation, true);
    if (o.deferDurability) withoutWaitingForDisk(o.db, write);
    else write();
    const storeMs = performance.now() - t;
    released = true;
    const files = pass.whole + pass.patched;
    const result: SyncResult = {
      from: o.from.key,
      to: o.to.key,
      rule: 'sender-wins',
      method: 'incremental',
      snapshotMs: 0,
      diffMs: pass.searchMs,
      copyMs: pass.copyMs,
      verifyMs: pass.verifyMs,
      bytes: pass.bytes,
      files,
      conflicts: { count: 0, paths: [] },
      generation,
      durationMs: performance.now() - o.started,
      ...(files > 0 ? { copier: pass.copier } : {}),
      ...(pass.patched ? { patched: pass.patched } : {}),
      storeMs,
    };
    o.logger?.info({ sync: result, targetChanges: pass.targetChanges }, 'disk sync done');
    return result;
  } catch (error) {
    settleSyncBase(o.db, o.pair);
    throw error;
  } finally {
    if (!released) releaseLeases(o.db, [syncLease(o.pair)], owner);
    // Inside a switch's hold the helper's exit is not waited for.
    const closing = searcher.close().catch(() => undefined);
    if (!o.final) await closing;
  }
}

/**
 * After a crash: syncs whose process is gone get their snapshots removed (the bases stay; the sync
 * can run again), and leftovers of finished syncs are removed. Returns the pairs cleaned up.
 */
export async function recoverSyncs(db: Db, options: { logger?: Logger } = {}): Promise<string[]> {
  const cleaned: string[] = [];
  for (const row of listSyncBases(db)) {
    if (row.state === 'syncing' && liveLease(db, syncLease(row.pair))) continue;
    if (row.state === 'ready' && row.pending.length === 0) continue;
    if (!row.transids && (row.baseA === '' || row.baseB === '')) {
      for (const p of row.pending) await removeHolder(p);
      deleteSyncBase(db, row.pair);
    } else await removeLeftovers(db, row.pair);
    options.logger?.warn({ pair: row.pair }, 'removed the leftovers of an interrupted disk sync');
    cleaned.push(row.pair);
  }
  return cleaned;
}
