/** What every step of a run gets. */
import type { Logger } from '../core/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import { getLc, type LcRecord } from '../inventory/index.ts';
import type { HostContext } from '../host/index.ts';
import type { Db } from '../store/index.ts';
import type { RunJournal } from './journal.ts';
import type { ResolvedRunOptions, RunEvent, RunFacts } from './types.ts';

export interface RunContext {
  runId: string;
  db: Db;
  host: HostContext;
  catalogue: Catalogue;
  journal: RunJournal;
  options: ResolvedRunOptions;
  facts: RunFacts;
  logger: Logger;
  emit(event: Omit<RunEvent, 'runId'>): void;
  signal?: AbortSignal;
}

export const saveFacts = (c: RunContext): void => c.journal.saveFacts(c.runId, c.facts);
export const lc1 = (c: RunContext): LcRecord => getLc(c.db, c.options.lc);
export function standby(c: RunContext): LcRecord {
  if (!c.facts.standby) throw new Error('no standby chosen yet');
  return getLc(c.db, c.facts.standby);
}
