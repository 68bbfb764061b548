/**
 * `understudy lc import <container>`: takes over an LXC container the operator already runs (see
 * app/lc-import.ts). With --api the daemon imports it: the LXC path is one on the daemon's host.
 */
import type { Command } from 'commander';
import { importLxcContainer, type ImportedLc } from '../../app/index.ts';
import { requireRoot } from '../../core/index.ts';
import type { CliContext } from '../context.ts';

export function registerLcImportCommand(lc: Command, ctx: CliContext): void {
  lc.command('import <container>')
    .description('take over an existing (stopped) LXC container as an LC on the LXC driver')
    .option('--lxc-path <dir>', 'LXC path the container lives in', '/var/lib/lxc')
    .option('--name <name>', 'name of the LC (default: the container name)')
    .option('--pool <pool>', 'storage pool for its disks', 'main')
    .action(async (container: string, o: { lxcPath: string; name?: string; pool: string }) => {
      const api = ctx.api();
      let imported: ImportedLc;
      if (api) {
        imported = (
          await api.request<{ imported: ImportedLc }>('POST', '/v1/lcs/import', {
            container,
            lxcPath: o.lxcPath,
            ...(o.name ? { name: o.name } : {}),
            pool: o.pool,
          })
        ).imported;
      } else {
        requireRoot('lc import');
        const app = ctx.openApp();
        try {
          imported = await importLxcContainer(app.db, await app.host(), {
            container,
            lxcPath: o.lxcPath,
            name: o.name,
            pool: o.pool,
            progress: (line) => ctx.progress(line),
          });
        } finally {
          app.close();
        }
      }
      const { record, nic } = imported;
      ctx.print({ ...record, importedFrom: imported.importedFrom }, () =>
        [
          `imported ${container} as ${record.name} (image ${imported.image}${imported.uidBase !== null ? `, owners shifted down by ${imported.uidBase}` : ''})`,
          nic
            ? `  NIC ${nic.name}: ${nic.mac} ${nic.addresses.join(' ')} (was on ${nic.bridge})`
            : '  no NIC',
          `  start it with: understudy lc start ${record.name}`,
        ].join('\n'),
      );
    });
}
