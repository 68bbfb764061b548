/** What every step of a run gets. */
import type { Logger } from '../core/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import { getLc, type LcRecord } from '../inventory/index.ts';
import type { HostContext } from '../host/index.ts';
import type { Db } from '../store/index.ts';
import type { RunJournal } from './journal.ts';
import type { RunFacts } from './facts.ts';
import type { ResolvedRunOptions, RunEvent } from './types.ts';

export interface RunContext {
  runId: string;
  /** Who drives the run (see core's Owner): its leases on the LCs are held in this name. */
  owner: string;
  /** The crash points of the run (see RunDeps.crashPoint). */
  crash(point: string, when: 'before' | 'after' | 'during'): Promise<void> | void;
  db: Db;
  host: HostContext;
  catalogue: Catalogue;
  journal: RunJournal;
  options: ResolvedRunOptions;
  facts: RunFacts;
  logger: Logger;
  emit(event: Omit<RunEvent, 'runId'>): void;
  signal?: AbortSignal;
  /** Stop at the next step boundary (see RunDeps.stop). */
  stop?: AbortSignal;
}

export const saveFacts = (c: RunContext): void => c.journal.saveFacts(c.runId, c.facts);
export const lc1 = (c: RunContext): LcRecord => getLc(c.db, c.options.lc);
export function standby(c: RunContext): LcRecord {
  if (!c.facts.standby) throw new Error('no standby chosen yet');
  return getLc(c.db, c.facts.standby);
}
