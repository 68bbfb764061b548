export { hostSchema } from './schema.ts';
export {
  initHost,
  hostStatus,
  requireHost,
  destroyHost,
  addPool,
  checkTools,
  type HostInitOptions,
  type HostStatus,
  type AddPoolOptions,
} from './host.ts';
export {
  listPools,
  getPool,
  poolUsage,
  poolDevice,
  attachLoop,
  parseSize,
  isMounted,
  readMounts,
  type Pool,
  type PoolUsage,
} from './pool.ts';
export { getNetwork, linkExists, type HostNetwork } from './network.ts';
export {
  recordClientHost,
  forgetClientHost,
  listClientHosts,
  removeClientHosts,
  type ClientHostRecord,
} from './clients.ts';
export {
  parseSubnet,
  subnetContains,
  parseAddress,
  ipToNumber,
  numberToIp,
  nthAddress,
  type Subnet,
} from './subnet.ts';
export type { HostContext } from './context.ts';
