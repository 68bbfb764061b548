export { openStore, type Db, type Migration, type ModuleSchema } from './db.ts';
