/**
 * The API's operations on an LC's settings and contents that the CLI has as `lc service set|show`,
 * `lc role`, `lc reboot`, `updates <lc> [--apply]` and `image remove`: the same functions the CLI
 * calls, so the checks and errors are the same.
 */
import type { Catalogue } from '../catalogue/index.ts';
import type { Db } from '../store/index.ts';
import { lcPendingUpdates, type HostContext } from '../app/index.ts';
import { removeImage } from '../images/index.ts';
import {
  getLc,
  setRole,
  setServices,
  validateServices,
  type LcRole,
  type ServiceDefinition,
} from '../inventory/index.ts';
import type { LcStatus } from '../drivers/index.ts';
import type { PendingUpdates } from '../monitor/index.ts';

export interface LcAdminDeps {
  db: Db;
  stateDir: string;
  catalogue: Catalogue;
  /** Throws HOST_NOT_INITIALISED without a host. */
  requireHost: () => HostContext;
}

export interface LcAdminOperations {
  /** The services the LC declares, in their order (LC_NOT_FOUND). */
  services(name: string): ServiceDefinition[];
  /** Replaces them after the same validation as the LC's YAML and the CLI's flags (SERVICE_INVALID). */
  setServices(name: string, services: unknown): ServiceDefinition[];
  setRole(name: string, role: LcRole): { name: string; role: LcRole };
  /** Restarts the LC and waits until it is up again. */
  rebootLc(name: string): Promise<LcStatus>;
  /** The updates pending for the LC; with `apply`, registered and marked for its next run. */
  updates(
    name: string,
    options: { feeds: string[]; packages?: string[]; apply: boolean },
  ): Promise<PendingUpdates>;
  removeImage(name: string): Promise<void>;
}

export function createLcAdminOperations(deps: LcAdminDeps): LcAdminOperations {
  const { db } = deps;
  return {
    services: (name) => getLc(db, name).services,
    setServices(name, input) {
      getLc(db, name);
      const services = validateServices(input, 'body.services');
      setServices(db, name, services);
      return services;
    },
    setRole(name, role) {
      setRole(db, name, role);
      return { name, role };
    },
    async rebootLc(name) {
      getLc(db, name);
      const host = deps.requireHost();
      await host.driver.reboot(name);
      await host.driver.waitUntilUp(name);
      return host.driver.status(name);
    },
    updates: (name, options) =>
      lcPendingUpdates({
        db,
        catalogue: deps.catalogue,
        host: deps.requireHost(),
        stateDir: deps.stateDir,
        lc: name,
        feeds: options.feeds,
        packages: options.packages,
        apply: options.apply,
      }),
    removeImage: (name) => removeImage(db, name),
  };
}
