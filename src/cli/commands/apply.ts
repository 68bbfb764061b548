/** `understudy apply <file>`: make the host match a YAML description (host, images, LCs). Idempotent. */
import type { Command } from 'commander';
import { requireRoot } from '../../core/index.ts';
import { loadHostConfig } from '../../config/index.ts';
import { addPool, getPool, initHost, listPools, parseSize } from '../../host/index.ts';
import { buildImage, findImage } from '../../images/index.ts';
import { createLc, openApp, startLc } from '../../app/index.ts';
import { findLc } from '../../inventory/index.ts';
import { developmentDriverWarning } from '../../drivers/index.ts';
import type { CliContext } from '../context.ts';

export function registerApplyCommand(program: Command, ctx: CliContext): void {
  program
    .command('apply <file>')
    .description('create what a YAML host description lists and is missing (host, pools, images, LCs)')
    .action(async (file: string) => {
      const config = loadHostConfig(file);
      requireRoot('apply');
      const app = openApp(ctx.stateDir());
      const done: string[] = [];
      try {
        await initHost({
          db: app.db,
          stateDir: app.stateDir,
          device: config.host.device,
          poolSizeBytes: parseSize(config.host.poolSize),
          subnet: config.host.subnet,
          bridge: config.host.bridge,
        });
        for (const pool of config.host.pools) {
          if (!listPools(app.db).some((p) => p.name === pool.name)) {
            await addPool({
              db: app.db,
              stateDir: app.stateDir,
              name: pool.name,
              device: pool.device,
              sizeBytes: parseSize(pool.size),
            });
            done.push(`pool ${pool.name} created`);
          }
        }
        // An LC's image is built from the recipe of that name unless an image of that name exists
        // (e.g. one built with --suite/--packages or imported).
        const lcImages = config.lcs.map((l) => l.image).filter((image) => !findImage(app.db, image));
        for (const recipe of new Set([...config.images, ...lcImages])) {
          const image = await buildImage({
            db: app.db,
            recipe,
            pool: getPool(app.db, 'main'),
            cacheDir: app.paths.cache,
            progress: (l) => ctx.progress(`image ${recipe}: ${l}`),
          });
          done.push(`image ${image.name} ready`);
        }
        const host = await app.start();
        for (const lc of config.lcs) {
          if (!findLc(app.db, lc.name)) {
            await createLc(app.db, host, {
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
            const warning = developmentDriverWarning(lc.name, lc.driver);
            if (warning) ctx.progress(warning);
          }
          if (lc.start) {
            const state = (await host.driver.status(lc.name)).state;
            if (state === 'stopped' || state === 'crashed') {
              await startLc(app.db, host, lc.name);
              done.push(`lc ${lc.name} started`);
            }
          }
        }
        ctx.print({ applied: file, changes: done }, () =>
          done.length ? done.join('\n') : 'nothing to do: the host already matches',
        );
      } finally {
        app.close();
      }
    });
}
