/**
 * Host setup (`understudy host init|status|destroy`): the storage pool and the physical network.
 * init is idempotent: run again, it re-creates whatever is missing (a pool not mounted after a reboot,
 * a deleted bridge) and refuses settings that differ from the recorded ones.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UnderstudyError, exec, requireRoot, statePaths } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import {
  createPool,
  isMounted,
  listPools,
  mountPool,
  poolUsage,
  removePool,
  type Pool,
  type PoolUsage,
} from './pool.ts';
import {
  ensureBridge,
  getNetwork,
  linkExists,
  planNetwork,
  removeBridge,
  type HostNetwork,
} from './network.ts';
import { insideBenchmarkRange, parseSubnet } from './subnet.ts';
import { removeClientHosts } from './clients.ts';

export interface HostInitOptions {
  db: Db;
  stateDir: string;
  /** A block device for the main pool; default: a sparse loop image in the state dir. */
  device?: string;
  poolSizeBytes?: number;
  subnet?: string;
  bridge?: string;
}

export interface HostStatus {
  initialised: boolean;
  stateDir: string;
  network?: HostNetwork & { bridgeUp: boolean };
  pools: (Pool & { mounted: boolean; usage?: PoolUsage })[];
}

/** Programs host setup needs, checked up front so a missing one is named with its package. */
const requiredTools = ['btrfs', 'mkfs.btrfs', 'ip', 'losetup', 'mount', 'nsenter', 'unshare'];

export async function checkTools(tools: readonly string[] = requiredTools): Promise<void> {
  for (const tool of tools) {
    // `command -v` semantics without a shell: look through PATH.
    const found = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
      .split(':')
      .some((dir) => fs.existsSync(`${dir}/${tool}`));
    if (!found) await exec([tool, '--version']); // throws EXEC_NOT_FOUND naming the Debian package
  }
}

export async function initHost(options: HostInitOptions): Promise<HostStatus> {
  requireRoot('host init');
  await checkTools();
  const { db } = options;
  const paths = statePaths(options.stateDir);
  fs.mkdirSync(paths.pools, { recursive: true, mode: 0o700 });
  fs.mkdirSync(paths.lcsRuntime, { recursive: true, mode: 0o700 });

  let network = getNetwork(db);
  if (network) {
    const wanted = options.subnet ? parseSubnet(options.subnet).cidr : network.subnet;
    if (wanted !== network.subnet || (options.bridge && options.bridge !== network.bridge)) {
      throw new UnderstudyError(
        'HOST_CONFLICT',
        `The host is already initialised with bridge ${network.bridge} on ${network.subnet}`,
        {
          hint: 'Use the same settings, or run `understudy host destroy` first.',
        },
      );
    }
  } else {
    const planned = planNetwork({
      tag: crypto.randomBytes(2).toString('hex'),
      subnet: options.subnet,
      bridge: options.bridge,
    });
    if (!insideBenchmarkRange(parseSubnet(planned.subnet))) {
      throw new UnderstudyError('NETWORK_INVALID', `The subnet ${planned.subnet} is outside 198.18.0.0/15`, {
        hint: 'understudy keeps its networks in the benchmarking range 198.18.0.0/15 so they never clash with real ones.',
      });
    }
    if (linkExists(planned.bridge)) {
      throw new UnderstudyError(
        'HOST_CONFLICT',
        `A network device named ${planned.bridge} already exists and was not made by understudy`,
        {
          hint: 'Choose another name with --bridge.',
        },
      );
    }
    network = planned;
  }
  await ensureBridge(network);
  db.prepare(
    'INSERT OR IGNORE INTO host_network (id, tag, bridge, subnet, host_address, created_at) VALUES (1, ?, ?, ?, ?, ?)',
  ).run(network.tag, network.bridge, network.subnet, network.hostAddress, new Date().toISOString());

  const pools = listPools(db);
  if (!pools.some((p) => p.name === 'main')) {
    try {
      await createPool({
        db,
        poolsDir: paths.pools,
        name: 'main',
        device: options.device,
        sizeBytes: options.poolSizeBytes,
      });
    } catch (error) {
      if (!listPools(db).length) await removeBridge(network).catch(() => undefined);
      db.prepare('DELETE FROM host_network WHERE id = 1').run();
      throw error;
    }
  }
  for (const pool of listPools(db)) await mountPool(pool);
  return hostStatus(db, options.stateDir);
}

/** Makes sure the host is initialised and its pools are mounted; throws HOST_NOT_INITIALISED if not. */
export async function requireHost(db: Db): Promise<{ network: HostNetwork; pools: Pool[] }> {
  const network = getNetwork(db);
  const pools = listPools(db);
  if (!network || pools.length === 0) {
    throw new UnderstudyError(
      'HOST_NOT_INITIALISED',
      'The host is not initialised (no storage pool or network)',
    );
  }
  if (!linkExists(network.bridge)) await ensureBridge(network);
  for (const pool of pools) await mountPool(pool);
  return { network, pools };
}

export async function hostStatus(db: Db, stateDir: string): Promise<HostStatus> {
  const network = getNetwork(db);
  const pools = await Promise.all(
    listPools(db).map(async (pool) => {
      const mounted = fs.existsSync(pool.mountpoint) && isMounted(pool.mountpoint);
      return { ...pool, mounted, usage: mounted ? await poolUsage(pool) : undefined };
    }),
  );
  const bridgeUp = network
    ? linkExists(network.bridge) &&
      fs.readFileSync(`/sys/class/net/${network.bridge}/operstate`, 'utf8').trim() !== 'down'
    : false;
  return {
    initialised: network !== undefined && pools.length > 0,
    stateDir,
    network: network && { ...network, bridgeUp },
    pools,
  };
}

export interface AddPoolOptions {
  db: Db;
  stateDir: string;
  name: string;
  device?: string;
  sizeBytes?: number;
}

/** Adds another storage pool (e.g. other media for the standby's disks, the seed's DISK3). */
export async function addPool(options: AddPoolOptions): Promise<Pool> {
  requireRoot('host pool-add');
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(options.name)) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `"${options.name}" is not a valid pool name (a-z, 0-9, -, up to 20)`,
    );
  }
  if (listPools(options.db).some((p) => p.name === options.name)) {
    throw new UnderstudyError('HOST_CONFLICT', `A pool named "${options.name}" already exists`);
  }
  return createPool({
    db: options.db,
    poolsDir: statePaths(options.stateDir).pools,
    name: options.name,
    device: options.device,
    sizeBytes: options.sizeBytes,
  });
}

/**
 * Removes the client hosts, the bridge and the pools understudy made (unmount, detach loop, delete
 * image). The caller destroys the LCs first. Idempotent.
 */
export async function destroyHost(db: Db): Promise<void> {
  requireRoot('host destroy');
  await removeClientHosts(db);
  for (const pool of listPools(db)) await removePool(db, pool);
  const network = getNetwork(db);
  if (network) await removeBridge(network);
  db.prepare('DELETE FROM host_network').run();
}
