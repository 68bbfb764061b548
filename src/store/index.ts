export {
  openStore,
  ensureSchemas,
  isStoreFull,
  storeFullError,
  withoutWaitingForDisk,
  type Db,
  type Migration,
  type ModuleSchema,
} from './db.ts';
export { leasesSchema, liveLease, takeLeases, releaseLeases, type Lease } from './leases.ts';
