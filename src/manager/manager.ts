/**
 * The patch manager's composition root (seed: 109): opens the store with every module's schema, finds
 * the host's pools and network, and builds the partitioning driver. LC lifecycle operations that touch
 * both the resource table and the driver live here so the CLI, the API and the patch run share them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, statePaths, type StatePaths } from '../core/index.ts';
import { openStore, type Db, type ModuleSchema } from '../store/index.ts';
import { hostSchema, requireHost, getPool, listPools, type HostNetwork } from '../host/index.ts';
import {
  inventorySchema,
  getLc,
  insertLc,
  deleteLc,
  listLcs,
  validateLcRequest,
  type LcRecord,
  type LcRequest,
} from '../inventory/index.ts';
import { imagesSchema, findImage } from '../images/index.ts';
import { catalogueSchema } from '../catalogue/index.ts';
import { diskCopySchema } from '../disk-copy/index.ts';
import { switchSchema } from '../switch/index.ts';
import { runSchema } from '../run/index.ts';
import { NamespaceDriver, type LcStatus, type PartitioningDriver } from '../drivers/index.ts';

/** Every module's schema; modules that keep tables add theirs here. */
export const allSchemas: ModuleSchema[] = [
  hostSchema,
  inventorySchema,
  imagesSchema,
  catalogueSchema,
  diskCopySchema,
  switchSchema,
  runSchema,
];

export function registerSchema(schema: ModuleSchema): void {
  if (!allSchemas.some((s) => s.module === schema.module)) allSchemas.push(schema);
}

export interface Manager {
  stateDir: string;
  paths: StatePaths;
  db: Db;
  close(): void;
}

export function openManager(stateDir: string): Manager {
  const paths = statePaths(stateDir);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = openStore(paths.database, allSchemas);
  return { stateDir, paths, db, close: () => db.close() };
}

export interface HostContext {
  network: HostNetwork;
  driver: NamespaceDriver;
}

/** The host's network and driver; throws HOST_NOT_INITIALISED when `host init` has not run. */
export async function hostContext(manager: Manager): Promise<HostContext> {
  const { network } = await requireHost(manager.db);
  const driver = new NamespaceDriver({
    tag: network.tag,
    runDir: manager.paths.lcsRuntime,
    poolPath: (pool) => getPool(manager.db, pool).mountpoint,
    imagePath: (image) => {
      const record = findImage(manager.db, image);
      if (!record)
        throw new UnderstudyError('IMAGE_NOT_FOUND', `There is no image "${image}"`, {
          hint: `Build it: understudy image build ${image}`,
        });
      return record.path;
    },
  });
  return { network, driver };
}

/** Validates the request, records the LC and creates it with the driver; leaves nothing on failure. */
export async function createLc(manager: Manager, host: HostContext, request: LcRequest): Promise<LcRecord> {
  const record = validateLcRequest({
    db: manager.db,
    request,
    network: host.network,
    pools: listPools(manager.db),
    imageExists: (image) => findImage(manager.db, image) !== undefined,
  });
  const lc = insertLc(manager.db, record);
  try {
    await host.driver.create(lc);
  } catch (error) {
    deleteLc(manager.db, lc.name);
    throw error;
  }
  return lc;
}

/** Stops (if needed) and destroys an LC, then removes it from the resource table. */
export async function destroyLc(
  manager: Manager,
  host: HostContext,
  name: string,
  options: { force?: boolean } = {},
): Promise<void> {
  const lc = getLc(manager.db, name);
  const status = await host.driver.status(name);
  if (status.state !== 'stopped' && status.state !== 'crashed') {
    if (!options.force) {
      throw new UnderstudyError('LC_RUNNING', `The logical computer "${name}" is ${status.state}`, {
        hint: 'Stop it first, or pass --force.',
      });
    }
    await host.driver.stop(name);
  }
  await host.driver.destroy(lc);
  deleteLc(manager.db, name);
}

export async function startLc(
  manager: Manager,
  host: HostContext,
  name: string,
  options: { wait?: boolean; timeoutMs?: number } = {},
): Promise<LcStatus> {
  const lc = getLc(manager.db, name);
  await host.driver.start(lc);
  if (options.wait !== false) await host.driver.waitUntilUp(name, { timeoutMs: options.timeoutMs });
  return host.driver.status(name);
}

export interface LcView extends LcRecord {
  status: LcStatus;
}

export async function describeLcs(manager: Manager, host: HostContext | undefined): Promise<LcView[]> {
  return Promise.all(
    listLcs(manager.db).map(async (lc) => ({
      ...lc,
      status: host
        ? await host.driver.status(lc.name)
        : { name: lc.name, state: 'stopped' as const, reboots: 0, consoleLog: '' },
    })),
  );
}

export type { PartitioningDriver };
export const runtimeDirOf = (manager: Manager, lc: string): string => path.join(manager.paths.lcsRuntime, lc);
