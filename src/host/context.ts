/**
 * What the manager knows of this host once it is initialised: its network, the partitioning driver
 * (the port every LC operation goes through; it dispatches to the LC's own driver) and the disk store
 * (the port every disk operation goes through). The composition root (`src/app`) builds it.
 */
import type { DiskStore } from '../disk-copy/index.ts';
import type { PartitioningDriver } from '../drivers/index.ts';
import type { HostNetwork } from './network.ts';

export interface HostContext {
  network: HostNetwork;
  driver: PartitioningDriver;
  disks: DiskStore;
}
