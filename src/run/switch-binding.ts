/**
 * The one binding of the switch to this host: the sides are the LCs' declared service driven over the
 * driver (service-side.ts), a NIC moves with the driver and the resource table follows it, and
 * the final sync of a stateful switch carries every disk (by the run's disk map, else by role) through
 * the disk store. `understudy switch`, the patch run, the rollback and the recovery of an interrupted
 * switch all use it.
 */
import type { Logger } from '../core/index.ts';
import {
  catchUp as catchUpDisk,
  type CatchUpOptions,
  type CatchUpResult,
  type SyncConflictRule,
  type SyncPhases,
  type SyncResult,
  type TreeCheckOptions,
  type TreeCheckResult,
} from '../disk-copy/index.ts';
import type { DiskSpec } from '../drivers/index.ts';
import type { HostContext } from '../host/index.ts';
import {
  dataDisks,
  disksByRole,
  diskRole,
  systemRole,
  getLc,
  moveNicRecord,
  setNicAddresses,
  setRole,
  setServices,
  type LcRecord,
  type LcRole,
  type ServiceDefinition,
} from '../inventory/index.ts';
import type { Db } from '../store/index.ts';
import { crashPoint } from './crash-point.ts';
import { counterpart, diskMapOfSwitch, type DiskMap } from './disk-map.ts';
import type { FinalSyncPhases, SwitchBinding, SwitchPlan, SwitchSide } from '../switch/index.ts';
import { serviceControl } from './service-side.ts';
import { serviceNotDeclared } from './service.ts';

export interface BindSwitchOptions {
  from: string;
  to: string;
  /** Every disk is synced after LC1's last write and before LC2 serves. */
  stateful: boolean;
  /** The service moved (both LCs run it: LC2 boots from LC1's copy). Default: the one LC1 declares. */
  service?: ServiceDefinition;
  /** `from`'s disks → `to`'s disks (a run's disk map); default: by role. */
  diskMap?: DiskMap;
}

/**
 * The service a switch between these LCs moves: the one `from` declares, else the one `to` declares
 * (after a switch both run it). SERVICE_NOT_DECLARED, naming `from`, when neither declares one.
 */
export function switchedService(db: Db, from: string, to: string): ServiceDefinition {
  const service = getLc(db, from).services[0] ?? getLc(db, to).services[0];
  if (!service)
    throw serviceNotDeclared(
      from,
      `the switch to ${to} cannot tell how to check, drain or hold it (${to} declares none either)`,
    );
  return service;
}

/** An LC as the switch (and the health check) sees it: its network context and its service. */
export function lcSide(host: HostContext, lc: string, service: ServiceDefinition): SwitchSide {
  return serviceControl(host, lc, service).side;
}

export function bindSwitch(db: Db, host: HostContext, o: BindSwitchOptions): SwitchBinding {
  const service = o.service ?? switchedService(db, o.from, o.to);
  const side = (lc: string): SwitchSide => lcSide(host, lc, service);
  return {
    from: side(o.from),
    to: side(o.to),
    async moveNic({ from, to, nic, addresses }) {
      const source = getLc(db, from.name);
      // The NIC carries into `to` the addresses the switch says, not those recorded for it in `from`.
      const carried = source.nics.map((n) => (n.name === nic ? { ...n, addresses: [...addresses] } : n));
      const newName = await host.driver.moveNic({ ...source, nics: carried }, nic, getLc(db, to.name));
      moveNicRecord(db, from.name, nic, to.name, newName);
      setNicAddresses(db, to.name, newName, [...addresses]);
      return newName;
    },
    finalSync: o.stateful ? finalSyncOf(host, db, o) : undefined,
    prepareFinalSync: o.stateful ? prepareFinalSyncOf(host, db, o) : undefined,
  };
}

/**
 * Before the hold of a stateful switch (LC2 is already held): the system disks are synced, then the
 * data disks of both LCs are flushed (the snapshots of the cut then have little to write) and their
 * final syncs prepared (LC2's side: its snapshot and its changes; the pools' cleaners done). A system disk's writers are the LC's
 * system, which the cut does not stop (LC1 keeps running and logging after the switch); what the
 * service's cut waits for is its data. Carrying the system disk here keeps it out of the hold.
 */
function prepareFinalSyncOf(host: HostContext, db: Db, o: BindSwitchOptions): () => Promise<FinalSyncPhases> {
  return async () => {
    const from = getLc(db, o.from);
    const to = getLc(db, o.to);
    const prepareData = async (): Promise<void> => {
      await Promise.all(
        [from, to].flatMap((lc) => dataDisks(lc).map((d) => host.disks.flush({ lc, disk: d.name }))),
      );
      await Promise.all(
        dataDisks(from).map((disk) =>
          host.disks.prepareFinalSync(
            { lc: from, disk: disk.name },
            { lc: to, disk: counterpart(from, to, disk, o.diskMap).name },
            { rule: ruleFor(disk) },
          ),
        ),
      );
    };
    // The system disks first: their syncs delete their previous bases, often in the pools of the
    // data disks, and the data disks' preparation waits until the cleaner has dropped them, so that
    // it does not run under the cut's snapshot (DiskStore.prepareFinalSync).
    const report = await syncDisks(host, from, to, { only: 'system', diskMap: o.diskMap });
    await prepareData();
    return phasesOf(report);
  };
}

/**
 * The final sync of a stateful switch, inside the hold: every data disk (the system disks were
 * synced just before the hold), with the phases of the longest disk. LC2 is held, so the sync takes
 * no snapshot of LC2's disks after the copy (SyncOptions.final). The syncs' records of their new
 * bases do not wait for the disk (SyncOptions.deferDurability): the disk store keeps them in `db`,
 * the store the switch journals in, and the switch journals the final sync done, waiting for the
 * disk, before LC2 serves — one wait inside the hold for both. A recovery after a host crash finds
 * either both (the sync is not run again over what LC2 served) or the switch's sync unfinished
 * (LC2 never served: the switch is reversed or syncs again over the previous bases).
 */
function finalSyncOf(host: HostContext, db: Db, o: BindSwitchOptions): () => Promise<FinalSyncPhases> {
  return async () =>
    phasesOf(
      await syncDisks(host, getLc(db, o.from), getLc(db, o.to), {
        only: 'data',
        final: true,
        deferDurability: true,
        diskMap: o.diskMap,
      }),
    );
}

/** The phases a switch reports of a sync of several disks. */
function phasesOf(report: DisksSyncReport): FinalSyncPhases {
  const { snapshotMs, diffMs, copyMs, verifyMs, bytes, files, conflicts } = report;
  return {
    snapshotMs,
    diffMs,
    copyMs,
    verifyMs,
    bytes,
    files,
    conflicts,
    conflictPaths: report.disks.flatMap((d) => d.conflicts.paths.map((p) => `${d.to}:${p}`)).slice(0, 10),
    disks: report.disks.map(describeDiskSync),
    ...(report.disks.some((d) => d.storeMs !== undefined)
      ? { storeMs: Math.max(...report.disks.map((d) => d.storeMs ?? 0)) }
      : {}),
  };
}

/** One disk's part of a sync, in a line: "lc1/app → lc2/app: 12 paths in-process, 31 ms". */
export function describeDiskSync(r: SyncResult): string {
  const what =
    r.method === 'skipped'
      ? `skipped (${r.reason ?? 'no base'})`
      : r.files === 0
        ? 'nothing to carry'
        : `${r.files} paths${r.copier ? ` ${r.copier}` : ''}${r.patched ? ` (${r.patched} files patched in place)` : ''}${r.method === 'whole' ? ' (whole)' : ''}`;
  const conflicts = r.conflicts.count > 0 ? `, ${r.conflicts.count} kept on ${r.to} (conflicts)` : '';
  return `${r.from} → ${r.to}: ${what}${conflicts}, ${Math.round(r.durationMs)} ms`;
}

/** The binding of a journalled switch plan (recovery after a crash). */
export function bindPlannedSwitch(db: Db, host: HostContext, plan: SwitchPlan): SwitchBinding {
  return bindSwitch(db, host, {
    from: plan.from.lc,
    to: plan.to.lc,
    stateful: plan.stateful,
    diskMap: diskMapOfSwitch(db, plan.from.lc, plan.to.lc),
  });
}

/**
 * What the sync of every disk of one LC onto the other's did: the phases over the disks (the longest
 * disk's when they were synced together, else summed; the shape the switch reports as its final
 * sync's phases), conflicts kept on the receiving side, and each disk's own result.
 */
export interface DisksSyncReport extends SyncPhases {
  conflicts: number;
  durationMs: number;
  disks: SyncResult[];
}

/** The system disk keeps the receiver's changes (it was patched); a data disk ends equal to the sender's. */
const ruleFor = (disk: DiskSpec): SyncConflictRule =>
  diskRole(disk) === systemRole ? 'receiver-wins' : 'sender-wins';

function summarise(results: SyncResult[], durationMs: number, concurrent: boolean): DisksSyncReport {
  const sum = (key: keyof SyncPhases): number => results.reduce((total, r) => total + r[key], 0);
  // Disks synced together: a phase took as long as its longest disk.
  const time = (key: keyof SyncPhases): number =>
    concurrent ? Math.max(0, ...results.map((r) => r[key])) : sum(key);
  return {
    snapshotMs: time('snapshotMs'),
    diffMs: time('diffMs'),
    copyMs: time('copyMs'),
    verifyMs: time('verifyMs'),
    bytes: sum('bytes'),
    files: sum('files'),
    conflicts: results.reduce((total, r) => total + r.conflicts.count, 0),
    durationMs,
    disks: results,
  };
}

/**
 * Carries every disk of `from` onto the disk of `to` with the same role (the final sync of a
 * stateful switch, after `from`'s last write): data disks end equal to `from`'s, the system disk
 * takes `from`'s changes except what `to` changed itself (see DiskStore.sync).
 */
export async function syncDisks(
  host: HostContext,
  from: LcRecord,
  to: LcRecord,
  options: {
    logger?: Logger;
    diskMap?: DiskMap;
    /** Only the system disk or only the data disks (default: every disk). */
    only?: 'system' | 'data';
    /** The final sync of a switch: `to` is held (SyncOptions.final). */
    final?: boolean;
    /** See SyncOptions.deferDurability. */
    deferDurability?: boolean;
  } = {},
): Promise<DisksSyncReport> {
  const started = performance.now();
  const chosen = disksByRole(from).filter(
    (disk) => options.only === undefined || (diskRole(disk) === systemRole) === (options.only === 'system'),
  );
  // The disks are independent pairs (each with its own bases and lease): they are synced together.
  // A failure is thrown once every disk has finished, so that nothing writes after the sync returned.
  let finished = 0;
  const settled = await Promise.allSettled(
    chosen.map(async (disk) => {
      const target = counterpart(from, to, disk, options.diskMap);
      const result = await host.disks.sync(
        { lc: from, disk: disk.name },
        { lc: to, disk: target.name },
        {
          rule: ruleFor(disk),
          ...(options.final ? { final: true } : {}),
          ...(options.deferDurability ? { deferDurability: true } : {}),
          ...(options.logger ? { logger: options.logger } : {}),
        },
      );
      // Once the first disk of a switch's final sync is synced (the others may still be syncing):
      // where the crash tests kill the manager.
      if (options.final && ++finished === 1) crashPoint('switch/final-sync', 'during');
      return result;
    }),
  );
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  const results = settled.map((r) => (r as PromiseFulfilledResult<SyncResult>).value);
  return summarise(results, performance.now() - started, true);
}

/** A write limit the catch-up put on a disk of `from` because its writer kept ahead of the sync. */
export interface CatchUpThrottle {
  /** `lc/disk` of the sender. */
  disk: string;
  bytesPerSecond: number;
}

/** The least a catch-up throttle lets a writer write (a service slowed, never stopped). */
const minThrottleBytesPerSecond = 1024 * 1024;

/**
 * The write limit for a disk whose writer outpaced the catch-up: half the rate at which the passes
 * carried bytes across, so that each further pass has less to carry than the one before.
 */
export function catchUpThrottleRate(passes: readonly SyncResult[]): number {
  const bytes = passes.reduce((n, p) => n + p.bytes, 0);
  const ms = passes.reduce((n, p) => n + p.durationMs, 0);
  const carried = ms > 0 ? (bytes / ms) * 1000 : 0;
  return Math.max(minThrottleBytesPerSecond, Math.round(carried / 2));
}

/**
 * After a stateful switch from `from` to `to` (which now serves): the whole-tree check of every data
 * disk pair (DiskStore.verifyFinalSync), one disk after the other (the reads are paced). The system
 * disks are not compared: the standby's keeps its patch. A store that cannot check yields nothing.
 */
export async function verifyDataDisks(
  host: HostContext,
  from: LcRecord,
  to: LcRecord,
  options: TreeCheckOptions & { diskMap?: DiskMap } = {},
): Promise<TreeCheckResult[]> {
  const { diskMap, ...check } = options;
  const results: TreeCheckResult[] = [];
  if (!host.disks.verifyFinalSync) return results;
  for (const disk of dataDisks(from)) {
    const target = counterpart(from, to, disk, diskMap);
    results.push(
      await host.disks.verifyFinalSync({ lc: from, disk: disk.name }, { lc: to, disk: target.name }, check),
    );
  }
  return results;
}

/**
 * Catch-up passes of every disk while `from` still serves, so that the final sync after its last
 * write carries little. `outpaced` names the disks whose writer kept ahead through every pass. With
 * `throttle`, such a disk's writers are limited (`throttled` says to what) and its passes run once
 * more; the caller lifts the limits once the switch is over.
 */
export async function catchUpDisks(
  host: HostContext,
  from: LcRecord,
  to: LcRecord,
  options: CatchUpOptions & {
    diskMap?: DiskMap;
    throttle?: (disk: DiskSpec, bytesPerSecond: number) => Promise<void>;
  } = {},
): Promise<DisksSyncReport & { outpaced: string[]; throttled: CatchUpThrottle[] }> {
  const { diskMap, throttle, ...catchUp } = options;
  const started = performance.now();
  const results: SyncResult[] = [];
  const outpaced: string[] = [];
  const throttled: CatchUpThrottle[] = [];
  for (const disk of disksByRole(from)) {
    const target = counterpart(from, to, disk, diskMap);
    const pass = (): Promise<CatchUpResult> =>
      catchUpDisk(host.disks, {
        from: { lc: from, disk: disk.name },
        to: { lc: to, disk: target.name },
        options: { ...catchUp, rule: ruleFor(disk) },
      });
    let caught = await pass();
    results.push(...caught.passes);
    if (caught.outpaced && throttle) {
      const bytesPerSecond = catchUpThrottleRate(caught.passes);
      await throttle(disk, bytesPerSecond);
      throttled.push({ disk: `${from.name}/${disk.name}`, bytesPerSecond });
      options.logger?.warn(
        { lc: from.name, disk: disk.name, bytesPerSecond },
        'the writer outpaces the catch-up sync: its writes are limited until the switch is over',
      );
      caught = await pass();
      results.push(...caught.passes);
    }
    if (caught.outpaced) outpaced.push(`${from.name}/${disk.name}`);
  }
  return { ...summarise(results, performance.now() - started, false), outpaced, throttled };
}

/** Writes the addresses the LC's NICs really hold into the resource table (after a switch). */
export async function syncNicRecords(db: Db, host: HostContext, lc: string): Promise<void> {
  for (const nic of getLc(db, lc).nics) {
    const out = await host.driver.netExec(lc, ['ip', '-o', '-4', 'addr', 'show', 'dev', nic.name]);
    const addresses = out.stdout
      .split('\n')
      .map((l) => /inet (\S+)/.exec(l)?.[1])
      .filter((a): a is string => a !== undefined);
    setNicAddresses(db, lc, nic.name, addresses);
  }
}

/** After a switch: the resource table holds the NICs as they now are and the roles as they now are. */
export async function recordSwitch(
  db: Db,
  host: HostContext,
  o: { from: string; to: string; fromRole: LcRole },
): Promise<void> {
  await syncNicRecords(db, host, o.from);
  await syncNicRecords(db, host, o.to);
  // `to` now runs what `from` ran (it booted from its copy): it declares the same services.
  const moved = getLc(db, o.from).services;
  if (moved.length > 0 && getLc(db, o.to).services.length === 0) setServices(db, o.to, moved);
  setRole(db, o.to, 'active');
  setRole(db, o.from, o.fromRole);
}
