/**
 * Step 701, the choice: the best-fitting unused LC whose resources cover LC1. A pure choice from the
 * resource table and the runs and leases in the store, made inside the transaction that starts a run
 * (with the claim of both LCs), so that two runs started together never get the same standby.
 */
import { UnderstudyError } from '../core/index.ts';
import { findStandbys, getLc, listLcs, type StandbyCandidate } from '../inventory/index.ts';
import type { Db } from '../store/index.ts';
import type { RunJournal } from './journal.ts';

/** The first address of the LC's first NIC (the service address, for LC1). */
export function firstAddress(db: Db, lc: string): string {
  const address = getLc(db, lc).nics[0]?.addresses[0];
  if (!address)
    throw new UnderstudyError('RUN_PRECONDITION', `The logical computer "${lc}" has no NIC with an address`, {
      hint: 'Give it an address (lc create --address).',
    });
  return address;
}

export interface StandbyChoice extends StandbyCandidate {
  /** LC1's service address (its first address). */
  serviceAddress: string;
}

/**
 * Chooses the standby of run `runId` for `lc` (`wanted` when named): no LC held by another unfinished
 * run or leased by another live owner. Throws RUN_PRECONDITION (LC1 has no NIC) or RUN_NO_STANDBY with
 * the reason of every LC that cannot stand in. Reads only; the caller claims the choice.
 */
export function chooseStandby(options: {
  db: Db;
  journal: RunJournal;
  runId: string;
  owner: string;
  lc: string;
  wanted?: string;
}): StandbyChoice {
  const { db, journal } = options;
  const target = getLc(db, options.lc);
  if (target.nics.length === 0)
    throw new UnderstudyError(
      'RUN_PRECONDITION',
      `The logical computer "${target.name}" has no NIC, so it serves nothing to switch`,
    );
  const busy = new Set([...journal.busyLcs(options.runId).keys(), ...journal.leasedByOthers(options.owner)]);
  busy.delete(target.name);
  const search = findStandbys(target, listLcs(db), busy);
  const chosen = options.wanted
    ? search.candidates.find((s) => s.lc === options.wanted)
    : search.candidates[0];
  if (!chosen) {
    const why = search.rejected.map((r) => `${r.lc}: ${r.reasons.join('; ')}`).join('\n  ');
    throw new UnderstudyError(
      'RUN_NO_STANDBY',
      options.wanted
        ? `"${options.wanted}" cannot stand in for "${target.name}":\n  ${why}`
        : `No logical computer can stand in for "${target.name}":\n  ${why || '(there is no other LC)'}`,
      {
        hint: 'Create an LC with at least the same CPU share, memory and disks and a NIC on the same network (role idle or standby).',
      },
    );
  }
  return { ...chosen, serviceAddress: firstAddress(db, target.name) };
}
