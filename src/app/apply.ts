/**
 * `apply`: makes the host match a YAML description (host, pools, images, LCs) by creating what is
 * missing. Idempotent. The CLI runs it on the store it opened; the daemon (`POST /v1/apply`) runs it
 * on the host it holds, where the host must already be initialised.
 */
import type { HostConfig } from '../config/index.ts';
import type { Db } from '../store/index.ts';
import { addPool, getPool, initHost, listPools, parseSize, type HostContext } from '../host/index.ts';
import { buildImage, findImage } from '../images/index.ts';
import { findLc } from '../inventory/index.ts';
import { retiredDriverWarning } from '../drivers/index.ts';
import { createLc, startLc } from './lcs.ts';

export interface ApplyOptions {
  db: Db;
  stateDir: string;
  /** Where image builds cache their base trees. */
  cacheDir: string;
  config: HostConfig;
  /** Initialise the host first (the CLI); the daemon's host is initialised already. */
  initHost: boolean;
  /** The host context once the host exists (the CLI's recovery runs here). */
  host: () => Promise<HostContext>;
  progress: (line: string) => void;
}

/** Creates what the description lists and the host lacks; returns what it did, one line each. */
export async function applyHostConfig(options: ApplyOptions): Promise<string[]> {
  const { db, stateDir, config } = options;
  const done: string[] = [];
  if (options.initHost)
    await initHost({
      db,
      stateDir,
      device: config.host.device,
      poolSizeBytes: parseSize(config.host.poolSize),
      subnet: config.host.subnet,
      bridge: config.host.bridge,
    });
  for (const pool of config.host.pools) {
    if (!listPools(db).some((p) => p.name === pool.name)) {
      await addPool({ db, stateDir, name: pool.name, device: pool.device, sizeBytes: parseSize(pool.size) });
      done.push(`pool ${pool.name} created`);
    }
  }
  // An LC's image is built from the recipe of that name unless an image of that name exists
  // (e.g. one built with --suite/--packages or imported).
  const lcImages = config.lcs.map((l) => l.image).filter((image) => !findImage(db, image));
  for (const recipe of new Set([...config.images, ...lcImages])) {
    const image = await buildImage({
      db,
      recipe,
      pool: getPool(db, 'main'),
      cacheDir: options.cacheDir,
      progress: (l) => options.progress(`image ${recipe}: ${l}`),
    });
    done.push(`image ${image.name} ready`);
  }
  const host = await options.host();
  for (const lc of config.lcs) {
    if (!findLc(db, lc.name)) {
      await createLc(db, host, {
        name: lc.name,
        image: lc.image,
        cpus: lc.cpus,
        cpuSharePercent: lc.cpuShare,
        memoryMb: lc.memory,
        systemDiskMb: lc.disks.system,
        appDiskMb: lc.disks.app,
        appMountPath: lc.appMount,
        pool: lc.pool,
        addresses: lc.addresses,
        mac: lc.mac,
        role: lc.role,
        driver: lc.driver,
        services: lc.services,
      });
      done.push(`lc ${lc.name} created`);
      const warning = retiredDriverWarning(lc.name, lc.driver);
      if (warning) options.progress(warning);
    }
    if (lc.start) {
      const state = (await host.driver.status(lc.name)).state;
      if (state === 'stopped' || state === 'crashed') {
        await startLc(db, host, lc.name);
        done.push(`lc ${lc.name} started`);
      }
    }
  }
  return done;
}
