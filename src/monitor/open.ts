import { catalogueSchema, createCatalogue, patchesDirOf, type Catalogue } from '../catalogue/index.ts';
import { statePaths } from '../core/index.ts';
import { mailSchema } from '../mail/index.ts';
import { openStore, type Db, type ModuleSchema } from '../store/index.ts';
import { monitorSchema } from './schema.ts';

/** Every schema the monitor needs (catalogue, monitor, mail). */
export const monitorSchemas: readonly ModuleSchema[] = [catalogueSchema, monitorSchema, mailSchema];

export function openMonitorStore(stateDir: string): { db: Db; catalogue: Catalogue } {
  const db = openStore(statePaths(stateDir).database, monitorSchemas);
  return { db, catalogue: createCatalogue({ db, patchesDir: patchesDirOf(stateDir) }) };
}
