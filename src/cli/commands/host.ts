/** `understudy host init|status|destroy|pool-add`. */
import { rmSync, rmdirSync } from 'node:fs';
import type { Command } from 'commander';
import { addPool, destroyHost, hostStatus, initHost, parseSize } from '../../host/index.ts';
import { destroyLc, describeLcs } from '../../app/index.ts';
import { UnderstudyError, isErrno, requireRoot, statePaths } from '../../core/index.ts';
import { patchesDirOf } from '../../catalogue/index.ts';
import { table, type CliContext } from '../context.ts';
import type { HostStatus, Pool } from '../../host/index.ts';

const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

export function renderHostStatus(status: HostStatus): string {
  if (!status.initialised)
    return `host: not initialised (state dir ${status.stateDir})\nRun \`understudy host init\`.`;
  const net = status.network;
  const lines = [
    `state dir: ${status.stateDir}`,
    net
      ? `network:   bridge ${net.bridge} ${net.bridgeUp ? 'up' : 'DOWN'}, subnet ${net.subnet}, host ${net.hostAddress}`
      : 'network:   none',
    '',
    table(
      ['POOL', 'ON', 'MOUNTED AT', 'SIZE', 'FREE'],
      status.pools.map((p) => [
        p.name,
        p.device ?? p.imagePath ?? '',
        p.mounted ? p.mountpoint : 'not mounted',
        gib(p.sizeBytes),
        p.usage ? gib(p.usage.freeBytes) : '-',
      ]),
    ),
  ];
  return lines.join('\n');
}

export function registerHostCommands(program: Command, ctx: CliContext): void {
  const host = program.command('host').description('the physical host: storage pools and network');

  host
    .command('init')
    .description('create the storage pool and the network bridge; idempotent')
    .option(
      '--device <dev>',
      'block device for the main pool (default: a sparse loop image in the state dir)',
    )
    .option('--pool-size <size>', 'size of the loop image, e.g. 8G', '8G')
    .option('--subnet <cidr>', 'bridge subnet inside 198.18.0.0/15', '198.18.0.0/24')
    .option('--bridge <name>', 'bridge name (default: generated)')
    .action(async (opts: { device?: string; poolSize: string; subnet: string; bridge?: string }) => {
      const app = ctx.openApp();
      try {
        const status = await initHost({
          db: app.db,
          stateDir: app.stateDir,
          device: opts.device,
          poolSizeBytes: parseSize(opts.poolSize),
          subnet: opts.subnet,
          bridge: opts.bridge,
        });
        ctx.print(status, () => `host initialised\n${renderHostStatus(status)}`);
      } finally {
        app.close();
      }
    });

  host
    .command('status')
    .description('show pools, network and logical computers')
    .action(async () => {
      const api = ctx.api();
      if (api) {
        const status = await api.request<HostStatus>('GET', '/v1/host');
        ctx.print(status, () => renderHostStatus(status));
        return;
      }
      const app = ctx.openApp();
      try {
        const status = await hostStatus(app.db, app.stateDir);
        ctx.print(status, () => renderHostStatus(status));
      } finally {
        app.close();
      }
    });

  host
    .command('pool-add <name>')
    .description('add another storage pool (e.g. other media for standby disks)')
    .option('--device <dev>', 'block device (default: a sparse loop image)')
    .option('--size <size>', 'size of the loop image', '8G')
    .action(async (name: string, opts: { device?: string; size: string }) => {
      const api = ctx.api();
      if (api) {
        const { pool } = await api.request<{ pool: Pool }>('POST', '/v1/host/pools', {
          name,
          ...(opts.device ? { device: opts.device } : {}),
          sizeBytes: parseSize(opts.size),
        });
        ctx.print(pool, () => `pool ${pool.name} mounted at ${pool.mountpoint}`);
        return;
      }
      const app = ctx.openApp();
      try {
        const pool = await addPool({
          db: app.db,
          stateDir: app.stateDir,
          name,
          device: opts.device,
          sizeBytes: parseSize(opts.size),
        });
        ctx.print(pool, () => `pool ${pool.name} mounted at ${pool.mountpoint}`);
      } finally {
        app.close();
      }
    });

  host
    .command('destroy')
    .description(
      'remove everything understudy made on the host: LCs, client hosts, pools, bridge, patch files, state',
    )
    .option('--force', 'also stop and destroy logical computers')
    .action(async (opts: { force?: boolean }) => {
      requireRoot('host destroy');
      const app = ctx.openApp();
      try {
        const status = await hostStatus(app.db, app.stateDir);
        const lcs = await describeLcs(app.db, undefined);
        if (lcs.length > 0) {
          if (!opts.force) {
            throw new UnderstudyError(
              'HOST_BUSY',
              `The host still has ${lcs.length} logical computer(s): ${lcs.map((l) => l.name).join(', ')}`,
            );
          }
          const hostCtx = status.initialised ? await app.start() : undefined;
          if (hostCtx) for (const lc of lcs) await destroyLc(app.db, hostCtx, lc.name, { force: true });
        }
        await destroyHost(app.db);
        ctx.print(
          { destroyed: true },
          () => 'host destroyed: LCs, client hosts, pools, bridge, patch files and state removed',
        );
      } finally {
        app.close();
      }
      const paths = statePaths(ctx.stateDir());
      for (const p of [
        paths.database,
        `${paths.database}-wal`,
        `${paths.database}-shm`,
        paths.lcsRuntime,
        paths.pools,
        patchesDirOf(paths.root),
      ])
        rmSync(p, { recursive: true, force: true });
      // The state dir itself goes only when nothing else is left in it (e.g. the image download cache).
      try {
        rmdirSync(paths.root);
      } catch (error) {
        if (!isErrno(error, 'ENOTEMPTY') && !isErrno(error, 'EEXIST')) throw error;
      }
    });
}
