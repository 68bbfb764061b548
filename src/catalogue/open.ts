import path from 'node:path';
import { statePaths } from '../core/index.ts';
import { openStore, type Db, type ModuleSchema } from '../store/index.ts';
import { createCatalogue, type Catalogue } from './catalogue.ts';
import { catalogueSchema } from './schema.ts';

/** Where the catalogue keeps patch files for a state directory. */
export function patchesDirOf(stateDir: string): string {
  return path.join(stateDir, 'patches');
}

/** Opens the store of a state directory with the catalogue's schema (plus `extraSchemas`) and the catalogue on it. */
export function openCatalogue(
  stateDir: string,
  extraSchemas: readonly ModuleSchema[] = [],
): { db: Db; catalogue: Catalogue } {
  const db = openStore(statePaths(stateDir).database, [catalogueSchema, ...extraSchemas]);
  return { db, catalogue: createCatalogue({ db, patchesDir: patchesDirOf(stateDir) }) };
}
