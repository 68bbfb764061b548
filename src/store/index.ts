export { openStore, ensureSchemas, type Db, type Migration, type ModuleSchema } from './db.ts';
