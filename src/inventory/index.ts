export { inventorySchema } from './schema.ts';
export {
  findLc,
  getLc,
  listLcs,
  insertLc,
  deleteLc,
  setRole,
  moveNicRecord,
  setNicAddresses,
  addNicRecord,
  deleteNicRecord,
  lcRoles,
  type LcRecord,
  type LcRole,
} from './lc-record.ts';
export {
  validateLcRequest,
  validateNic,
  type ValidateNicOptions,
  hostCapacity,
  parseCpuSet,
  type LcRequest,
  type HostCapacity,
  type ValidateLcOptions,
} from './validate.ts';
export {
  findStandbys,
  coverageGaps,
  type StandbyCandidate,
  type StandbyRejection,
  type StandbySearchResult,
} from './standby.ts';
export { diskRole, disksByRole, dataDisks, systemRole } from './disk-roles.ts';
export {
  serviceSchema,
  validateServices,
  serviceFromFlags,
  servicesOf,
  setServices,
  undrainOf,
  type ServiceDefinition,
  type ServiceInput,
  type ServiceAction,
  type ServiceHealth,
  type ServiceFlags,
} from './service.ts';
