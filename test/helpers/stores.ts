/**
 * The host's store opened for a test with only the schemas it needs (production opens it once, with
 * every schema, in the composition root: src/app).
 */
import { catalogueSchema, createCatalogue, patchesDirOf, type Catalogue } from '../../src/catalogue/index.ts';
import { statePaths } from '../../src/core/index.ts';
import { mailSchema } from '../../src/mail/index.ts';
import { monitorSchema } from '../../src/monitor/index.ts';
import { openStore, type Db, type ModuleSchema } from '../../src/store/index.ts';

/** Every schema the monitor needs (catalogue, monitor, mail). */
export const monitorSchemas: readonly ModuleSchema[] = [catalogueSchema, monitorSchema, mailSchema];

/** The store of a state directory with the catalogue's schema (plus `extraSchemas`) and the catalogue on it. */
export function openCatalogue(
  stateDir: string,
  extraSchemas: readonly ModuleSchema[] = [],
): { db: Db; catalogue: Catalogue } {
  const db = openStore(statePaths(stateDir).database, [catalogueSchema, ...extraSchemas]);
  return { db, catalogue: createCatalogue({ db, patchesDir: patchesDirOf(stateDir) }) };
}

/** The store of a state directory with the monitor's schemas and the catalogue on it. */
export function openMonitorStore(stateDir: string): { db: Db; catalogue: Catalogue } {
  return openCatalogue(stateDir, [monitorSchema, mailSchema]);
}
