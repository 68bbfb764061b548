/**
 * The fleet agent's own stores, in its directory next to the host's store: `journal.db` (the work it
 * took) and `runs.db` (the host's run for each work id). The root opens them like the host's store;
 * the fleet module hands its schemas in (it builds on `App`, so the root does not import it).
 */
import path from 'node:path';
import { openStore, type Db, type ModuleSchema } from '../store/index.ts';

export interface AgentStores {
  journal: Db;
  runs: Db;
}

export function openAgentStores(
  dir: string,
  schemas: { journal: ModuleSchema; runs: ModuleSchema },
): AgentStores {
  const journal = openStore(path.join(dir, 'journal.db'), [schemas.journal]);
  try {
    return { journal, runs: openStore(path.join(dir, 'runs.db'), [schemas.runs]) };
  } catch (error) {
    journal.close();
    throw error;
  }
}
