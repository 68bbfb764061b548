/**
 * The composition root (seed: the patch manager 109). The one place that opens the store, with every
 * module's schema, and builds the ports for this host: the driver registry, the disk store, the
 * catalogue. The CLI commands, the daemon and the demo get an `App` and hand its parts down; no module
 * below opens the store or picks a driver or a disk store itself.
 */
import fs from 'node:fs';
import {
  UnderstudyError,
  processOwner,
  statePaths,
  type Logger,
  type Owner,
  type StatePaths,
} from '../core/index.ts';
import { openStore, type Db, type ModuleSchema } from '../store/index.ts';
import { getPool, hostSchema, poolDevice, requireHost, type HostContext } from '../host/index.ts';
import { inventorySchema } from '../inventory/index.ts';
import { imagesSchema, findImage } from '../images/index.ts';
import { catalogueSchema, createCatalogue, patchesDirOf, type Catalogue } from '../catalogue/index.ts';
import { BtrfsDiskStore, diskCopySchema, type DiskStore } from '../disk-copy/index.ts';
import { switchSchema } from '../switch/index.ts';
import { runSchema } from '../run/index.ts';
import { monitorSchema } from '../monitor/index.ts';
import { mailSchema } from '../mail/index.ts';
import { DriverRegistry } from './drivers.ts';
import { recoverAtStart, type RecoveryReport } from './recover.ts';
import type { RunDeps } from '../run/index.ts';

/** Every module's schema: the store is opened once, with all of them. */
export const allSchemas: readonly ModuleSchema[] = [
  hostSchema,
  inventorySchema,
  imagesSchema,
  catalogueSchema,
  diskCopySchema,
  switchSchema,
  runSchema,
  monitorSchema,
  mailSchema,
];

export interface App {
  stateDir: string;
  /** Who this manager is (see core's Owner): the work it starts is leased in this name. */
  owner: Owner;
  paths: StatePaths;
  db: Db;
  catalogue: Catalogue;
  /** The host's network, driver registry and disk store; throws HOST_NOT_INITIALISED before `host init`. */
  host(): Promise<HostContext>;
  /** Like host(), but undefined when the host is not initialised. */
  hostIfReady(): Promise<HostContext | undefined>;
  /**
   * The start of a command that changes state: the host, after the recovery of what a crashed
   * manager left (once per App; see recover.ts). Throws HOST_NOT_INITIALISED before `host init`.
   */
  start(options?: { logger?: Logger; onEvent?: RunDeps['onEvent'] }): Promise<HostContext>;
  /** What the recovery of start() did (undefined before it ran). */
  recovery: RecoveryReport | undefined;
  close(): void;
}

/** The disk store of this host: btrfs pools. */
function diskStoreFor(db: Db): DiskStore {
  return new BtrfsDiskStore({
    db,
    poolPath: (pool) => getPool(db, pool).mountpoint,
    poolDevice: (pool) => poolDevice(getPool(db, pool)),
  });
}

export function openApp(stateDir: string, options: { owner?: Owner } = {}): App {
  const paths = statePaths(stateDir);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = openStore(paths.database, allSchemas);
  const catalogue = createCatalogue({ db, patchesDir: patchesDirOf(stateDir) });
  let host: HostContext | undefined;
  const app: App = {
    stateDir,
    owner: options.owner ?? processOwner(),
    recovery: undefined,
    paths,
    db,
    catalogue,
    async host() {
      if (host) return host;
      const { network } = await requireHost(db);
      const disks = diskStoreFor(db);
      const driver = new DriverRegistry(db, {
        stateDir,
        tag: network.tag,
        runDir: paths.lcsRuntime,
        poolPath: (pool) => getPool(db, pool).mountpoint,
        imagePath: (image) => {
          const record = findImage(db, image);
          if (!record)
            throw new UnderstudyError('IMAGE_NOT_FOUND', `There is no image "${image}"`, {
              hint: `Build it: understudy image build ${image}`,
            });
          return record.path;
        },
        diskPath: (lc, disk) => disks.mountpoint({ lc, disk }),
      });
      host = { network, driver, disks };
      return host;
    },
    async hostIfReady() {
      return app.host().catch((error: unknown) => {
        if (error instanceof UnderstudyError && error.code === 'HOST_NOT_INITIALISED') return undefined;
        throw error;
      });
    },
    async start(startOptions = {}) {
      const ready = await app.host();
      app.recovery ??= await recoverAtStart({
        db,
        host: ready,
        catalogue,
        owner: app.owner,
        logger: startOptions.logger,
        onEvent: startOptions.onEvent,
      });
      return ready;
    },
    close: () => db.close(),
  };
  return app;
}

/** Opens the app, runs `fn`, and closes the app whatever happens. */
export async function withApp<T>(stateDir: string, fn: (app: App) => Promise<T> | T): Promise<T> {
  const app = openApp(stateDir);
  try {
    return await fn(app);
  } finally {
    app.close();
  }
}
