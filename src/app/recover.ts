/**
 * Recovery at every start: before a command that changes state (and `serve`) does anything, the
 * manager finishes or reverses what a crash of an earlier manager left half done — disk copies,
 * switches, patch runs — and lifts the freezes and write limits such a crash left on LCs. It runs
 * under the `recovery` lease, so two managers starting together never recover the same thing; and
 * it takes over only work whose owner is dead: work of a live process (a switch or a run another
 * command is making right now) is left alone.
 */
import type { UnderstudyError } from '../core/index.ts';
import { isUnderstudyError, silentLogger, type Logger, type Owner } from '../core/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import type { HostContext } from '../host/index.ts';
import { getLc, listLcs } from '../inventory/index.ts';
import {
  bindPlannedSwitch,
  recordSwitch,
  recoverRuns,
  syncNicRecords,
  type RunDeps,
  type RunRecord,
} from '../run/index.ts';
import { liveLease, releaseLeases, takeLeases, type Db } from '../store/index.ts';
import { SwitchJournal, recoverSwitches, type SwitchResult } from '../switch/index.ts';

export interface RecoveryReport {
  /** Another manager was recovering at the same time: this one left it to that one. */
  skipped: boolean;
  copies: string[];
  switches: SwitchResult[];
  runs: RunRecord[];
  /** LCs whose freeze or write limits were lifted. */
  madeSafe: string[];
  errors: UnderstudyError[];
}

export interface RecoverOptions {
  db: Db;
  host: HostContext;
  catalogue: Catalogue;
  owner: Owner;
  logger?: Logger;
  onEvent?: RunDeps['onEvent'];
}

/** LCs leased by a live owner other than `owner`. */
function busyElsewhere(db: Db, lc: string, owner: Owner): boolean {
  const lease = liveLease(db, `lc:${lc}`);
  return lease !== undefined && lease.owner !== owner.id;
}

export async function recoverAtStart(o: RecoverOptions): Promise<RecoveryReport> {
  const logger = o.logger ?? silentLogger;
  const report: RecoveryReport = {
    skipped: false,
    copies: [],
    switches: [],
    runs: [],
    madeSafe: [],
    errors: [],
  };
  if (takeLeases(o.db, ['recovery'], o.owner.id, 'recovery at start')) {
    report.skipped = true;
    return report;
  }
  const keep = (error: unknown): void => {
    if (!isUnderstudyError(error)) throw error;
    report.errors.push(error);
    logger.error({ err: error }, 'recovery could not finish something');
  };
  try {
    // First the switches: a switch left inside its hold keeps clients' requests waiting on LC2.
    const switches = await recoverSwitches({
      db: o.db,
      logger,
      bind: (plan) => bindPlannedSwitch(o.db, o.host, plan),
      claim: (record) =>
        !busyElsewhere(o.db, record.plan.from.lc, o.owner) &&
        !busyElsewhere(o.db, record.plan.to.lc, o.owner),
    });
    report.switches = switches.recovered;
    switches.errors.forEach(keep);
    // The resource table follows the devices (what the interrupted command would have recorded).
    for (const result of switches.recovered) {
      const record = new SwitchJournal(o.db).get(result.id);
      if (!record) continue;
      const { from, to } = { from: record.plan.from.lc, to: record.plan.to.lc };
      try {
        if (result.outcome === 'switched' && getLc(o.db, from).role === 'active')
          await recordSwitch(o.db, o.host, { from, to, fromRole: 'retired' });
        else for (const lc of [from, to]) await syncNicRecords(o.db, o.host, lc);
      } catch (error) {
        keep(error);
      }
    }
    // Then what interrupted copies and syncs left (once the recovered switches' own syncs have removed
    // what they replaced).
    await o.host.disks.settled();
    report.copies = await o.host.disks.recoverCopies(o.db, { logger });
    // A crash during a copy can leave the source LC frozen or throttled: every LC no live process
    // works on is thawed and its write limits lifted.
    for (const lc of listLcs(o.db)) {
      if (busyElsewhere(o.db, lc.name, o.owner)) continue;
      const state = (await o.host.driver.status(lc.name)).state;
      if (state === 'stopped' || state === 'crashed') continue;
      try {
        await o.host.driver.thaw(lc.name);
        for (const disk of lc.disks)
          await o.host.driver.setWriteLimit(lc.name, o.host.disks.device({ lc, disk: disk.name }), null);
        report.madeSafe.push(lc.name);
      } catch (error) {
        keep(error);
      }
    }
    const runs = await recoverRuns({
      db: o.db,
      host: o.host,
      catalogue: o.catalogue,
      owner: o.owner,
      logger,
      onEvent: o.onEvent,
    });
    report.runs = runs.resumed;
    runs.errors.forEach(keep);
  } finally {
    releaseLeases(o.db, ['recovery'], o.owner.id);
  }
  for (const id of report.copies)
    logger.warn({ jobId: id }, 'removed the leftovers of an interrupted disk copy');
  for (const s of report.switches)
    logger.warn({ switchId: s.id, outcome: s.outcome }, 'recovered an interrupted switch');
  for (const r of report.runs)
    logger.warn({ runId: r.id, state: r.state }, 'recovered an interrupted patch run');
  return report;
}
