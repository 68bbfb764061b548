export {
  openManager,
  hostContext,
  createLc,
  destroyLc,
  startLc,
  describeLcs,
  registerSchema,
  allSchemas,
  runtimeDirOf,
  type Manager,
  type HostContext,
  type LcView,
} from './manager.ts';
