/**
 * What the manager knows of this host once it is initialised: its network, the partitioning driver
 * (the port every LC operation goes through; it dispatches to the LC's own driver) and the disk store
 * (the port every disk operation goes through). The composition root (`src/app`) builds it.
 */
import type { ExecOptions, ExecResult } from '../core/index.ts';
import type { DiskStore } from '../disk-copy/index.ts';
import type { PartitioningDriver } from '../drivers/index.ts';
import type { HostNetwork } from './network.ts';

export interface HostContext {
  network: HostNetwork;
  driver: PartitioningDriver;
  disks: DiskStore;
  /**
   * Runs a program in the host's own network, where the clients of the bridge are (the post-switch
   * watch checks the service from there). Default: core's exec on this host.
   */
  hostExec?(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}
