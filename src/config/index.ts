export {
  parseHostConfig,
  loadHostConfig,
  hostConfigSchema,
  type HostConfig,
  type LcConfig,
} from './host-config.ts';
