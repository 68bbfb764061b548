/** The composition root: opens the store once and builds the ports (driver registry, disk store). */
export { openApp, withApp, allSchemas, type App } from './app.ts';
export { createLc, destroyLc, startLc, describeLcs, type LcView } from './lcs.ts';
export { driverFactories, driverNames, DriverRegistry } from './drivers.ts';
export type { HostContext } from '../host/index.ts';
export { recoverAtStart, type RecoveryReport, type RecoverOptions } from './recover.ts';
export { lcPendingUpdates, type LcUpdatesOptions } from './updates.ts';
export { applyHostConfig, type ApplyOptions } from './apply.ts';
export { addLcNic, removeLcNic, type AddNicOptions } from './nics.ts';
export { importLxcContainer, type ImportLxcOptions, type ImportedLc } from './lc-import.ts';
export { copyLcDisk, type LcDiskCopyOptions } from './disk-copy.ts';
export { openAgentStores, type AgentStores } from './agent-stores.ts';
