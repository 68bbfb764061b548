export type {
  PartitioningDriver,
  LcSpec,
  DiskSpec,
  NicSpec,
  LcStatus,
  LcRuntimeState,
  StopResult,
  ControlReport,
  ResourceUsage,
  DriverEnvironment,
  DriverFactory,
} from './driver.ts';
export { NamespaceDriver, type NamespaceDriverOptions } from './namespace/namespace-driver.ts';
export { cgroupVersion, LcCgroup } from './cgroups.ts';
export {
  writeFileInRoot,
  readFileInRoot,
  hashFileInRoot,
  listDirInRoot,
  removeInRoot,
  DEFAULT_MAX_READ_BYTES,
  type WriteInRootOptions,
  type ReadInRootOptions,
} from './rootfs-io.ts';
export { hostIfName } from './namespace/nic.ts';
export { LxcDriver, type LxcDriverOptions } from './lxc/lxc-driver.ts';
export { lxcConfig, cgroupLines, type LxcConfigInput } from './lxc/config.ts';
export { parseSubids, candidateBases, leaseIdmap, releaseIdmap, idmapSize } from './lxc/idmap.ts';
export {
  parseExistingConfig,
  inspectExistingContainer,
  type ExistingContainer,
  type ExistingNic,
} from './lxc/existing.ts';
export {
  defaultDriver,
  retiredDrivers,
  testDriversVariable,
  describeDrivers,
  isDriverRetired,
  assertDriverUsable,
  retiredDriverWarning,
} from './driver-choice.ts';
