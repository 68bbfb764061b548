/**
 * `understudy lc import <container>`: takes over an LXC container the operator already runs. Its root
 * filesystem is copied (while it is stopped) into an image, with the owners shifted back when it is
 * unprivileged; the LC is created on the LXC driver with the container's MAC, addresses and memory.
 */
import type { Command } from 'commander';
import { createLc, openApp } from '../../app/index.ts';
import { UnderstudyError, requireRoot } from '../../core/index.ts';
import { inspectExistingContainer } from '../../drivers/index.ts';
import { getPool } from '../../host/index.ts';
import { importImage } from '../../images/index.ts';
import type { CliContext } from '../context.ts';

export function registerLcImportCommand(lc: Command, ctx: CliContext): void {
  lc.command('import <container>')
    .description('take over an existing (stopped) LXC container as an LC on the LXC driver')
    .option('--lxc-path <dir>', 'LXC path the container lives in', '/var/lib/lxc')
    .option('--name <name>', 'name of the LC (default: the container name)')
    .option('--pool <pool>', 'storage pool for its disks', 'main')
    .action(async (container: string, o: { lxcPath: string; name?: string; pool: string }) => {
      requireRoot('lc import');
      const app = openApp(ctx.stateDir());
      try {
        const host = await app.host();
        const existing = await inspectExistingContainer({ lxcPath: o.lxcPath, name: container });
        if (existing.nics.length > 1)
          throw new UnderstudyError(
            'LXC_IMPORT_UNSUPPORTED',
            `The LXC container "${container}" has ${existing.nics.length} NICs; an imported LC takes one`,
            { hint: 'Remove the other NICs from its config, import it, then add them with the LC.' },
          );
        const name = o.name ?? container;
        const nic = existing.nics[0];
        const image = await importImage({
          db: app.db,
          source: existing.rootfs,
          name: `${name}-imported`,
          pool: getPool(app.db, o.pool),
          shiftIds: existing.idmap,
          origin: { lxcContainer: existing.configFile },
          progress: (line) => ctx.progress(line),
        });
        const record = await createLc(app.db, host, {
          name,
          image: image.name,
          driver: 'lxc',
          pool: o.pool,
          cpus: existing.cpus,
          memoryMb: existing.memoryMb,
          appDiskMb: 0,
          addresses: nic?.addresses ?? [],
          mac: nic?.mac,
        });
        ctx.print({ ...record, importedFrom: existing.configFile }, () =>
          [
            `imported ${container} as ${name} (image ${image.name}${existing.idmap ? `, owners shifted down by ${existing.idmap.uidBase}` : ''})`,
            nic
              ? `  NIC ${nic.name}: ${nic.mac} ${nic.addresses.join(' ')} (was on ${nic.bridge})`
              : '  no NIC',
            `  start it with: understudy lc start ${name}`,
          ].join('\n'),
        );
      } finally {
        app.close();
      }
    });
}
