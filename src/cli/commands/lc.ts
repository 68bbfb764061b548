/** `understudy lc create|list|show|start|stop|reboot|exec|destroy|standby-for`. */
import type { Command } from 'commander';
import { UnderstudyError, requireRoot, type ExecResult } from '../../core/index.ts';
import {
  addLcNic,
  createLc,
  describeLcs,
  destroyLc,
  driverNames,
  removeLcNic,
  startLc,
  type App,
  type HostContext,
  type LcView,
} from '../../app/index.ts';
import {
  findStandbys,
  getLc,
  lcRoles,
  listLcs,
  setRole,
  type LcRole,
  type StandbySearchResult,
} from '../../inventory/index.ts';
import {
  defaultDriver,
  describeDrivers,
  retiredDriverWarning,
  type LcStatus,
  type NicSpec,
  type StopResult,
} from '../../drivers/index.ts';
import { table, type CliContext } from '../context.ts';
import { registerLcImportCommand } from './lc-import.ts';
import { registerLcServiceCommands, serviceOfFlags, serviceOptions } from './lc-service.ts';

function intOption(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n))
    throw new UnderstudyError('INVALID_ARGUMENT', `${name}: "${value}" is not a whole number`);
  return n;
}

/**
 * Opens the app for a command on LCs; one that changes state first recovers what a crashed manager
 * left (`readOnly` skips that).
 */
async function withHost<T>(
  ctx: CliContext,
  fn: (app: App, host: HostContext) => Promise<T>,
  options: { readOnly?: boolean } = {},
): Promise<T> {
  requireRoot('this command');
  const app = ctx.openApp();
  try {
    return await fn(app, options.readOnly ? await app.host() : await app.start());
  } finally {
    app.close();
  }
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const enc = encodeURIComponent;

/** `understudy lc nic add|remove`: a NIC on the bridge, plugged into or out of an LC (running or not). */
function registerNicCommands(lc: Command, ctx: CliContext): void {
  const nic = lc.command('nic').description("a logical computer's NICs on the bridge");

  nic
    .command('add <lc>')
    .description('add a NIC on the bridge to a logical computer; it stays across its reboots')
    .option('--address <cidr>', 'address of the NIC (repeatable; none = no address)', collect, [])
    .option('--mac <mac>', 'MAC (default: generated)')
    .option('--name <name>', 'name inside the LC (default: the lowest free ethN)')
    .action(async (name: string, o: { address: string[]; mac?: string; name?: string }) => {
      const request = { addresses: o.address, mac: o.mac, name: o.name };
      const api = ctx.api();
      const spec = api
        ? (await api.request<{ nic: NicSpec }>('POST', `/v1/lcs/${enc(name)}/nics`, request)).nic
        : await withHost(ctx, (app, host) => addLcNic(app.db, host, { lc: name, ...request }));
      ctx.print(
        spec,
        () =>
          `${name}: added ${spec.name} (${spec.mac}) ${spec.addresses.join(', ') || 'without an address'}`,
      );
    });

  nic
    .command('remove <lc> <nic>')
    .description('remove a NIC from a logical computer')
    .action(async (name: string, nicName: string) => {
      const api = ctx.api();
      if (api) await api.request('DELETE', `/v1/lcs/${enc(name)}/nics/${enc(nicName)}`);
      else await withHost(ctx, (app, host) => removeLcNic(app.db, host, name, nicName));
      ctx.print({ lc: name, removed: nicName }, () => `${name}: removed ${nicName}`);
    });
}

/** An LC's resource table entry and state, for a person. */
function renderLc(view: LcView & { usage?: { memoryBytes: number; oomKills: number } }): string {
  const { status, usage } = view;
  return [
    `${view.name}: ${status.state} (role ${view.role}, image ${view.image}, driver ${view.driver})`,
    `cpu:     CPU${view.cpus}/${view.cpuSharePercent}%`,
    `memory:  ${view.memoryMb} MB${usage ? ` (using ${(usage.memoryBytes / 1024 ** 2).toFixed(1)} MB, ${usage.oomKills} OOM kills)` : ''}`,
    ...view.disks.map(
      (d) => `disk:    ${d.name} ${d.sizeMb} MB in pool ${d.pool}, mounted at ${d.mountPath}`,
    ),
    ...view.nics.map((n) => `nic:     ${n.name} ${n.mac} ${n.addresses.join(' ')} on ${n.bridge}`),
    status.initPid
      ? `init:    host pid ${status.initPid}, booted ${status.bootedAt ?? '?'}, ${status.reboots} reboot(s)`
      : '',
    `console: ${status.consoleLog}`,
  ]
    .filter(Boolean)
    .join('\n');
}

function renderLcList(views: readonly LcView[]): string {
  return views.length === 0
    ? 'no logical computers; create one with `understudy lc create`'
    : table(
        ['LC', 'STATE', 'ROLE', 'CPU', 'MEMORY', 'DISKS', 'NICS'],
        views.map((v) => [
          v.name,
          v.status.state,
          v.role,
          `CPU${v.cpus}/${v.cpuSharePercent}%`,
          `${v.memoryMb}MB`,
          v.disks.map((d) => `${d.name}:${d.sizeMb}MB@${d.pool}`).join(' '),
          v.nics.map((n) => `${n.name}:${n.addresses.join(',')}`).join(' ') || '-',
        ]),
      );
}

function renderStandbys(name: string, result: StandbySearchResult): string {
  return [
    result.candidates.length
      ? `can stand in for ${name} (best fit first):\n${result.candidates.map((c, i) => `  ${i + 1}. ${c.lc} (spare: ${c.excess.cpuSharePercent}% CPU, ${c.excess.memoryMb} MB memory, ${c.excess.diskMb} MB disk)`).join('\n')}`
      : `no LC can stand in for ${name}`,
    ...result.rejected.map((r) => `  ${r.lc}: no — ${r.reasons.join('; ')}`),
  ].join('\n');
}

export function registerLcCommands(program: Command, ctx: CliContext): void {
  const lc = program.command('lc').description('logical computers (the resource table of Fig. 5)');

  serviceOptions(lc.command('create <name>'))
    .description('create a logical computer from an image')
    .requiredOption('--image <image>', 'image to create it from (see `image list`)')
    .option('--cpus <set>', 'CPU set, e.g. 0 or 0-1', '0')
    .option('--cpu-share <percent>', 'share of the CPU set, percent of one CPU', '100')
    .option('--memory <mb>', 'memory limit in MB', '128')
    .option('--system-disk <mb>', 'system disk size in MB', '1024')
    .option('--app-disk <mb>', 'application disk size in MB (0 = none)', '512')
    .option('--app-mount <path>', 'where the application disk is mounted inside', '/srv')
    .option('--pool <pool>', 'storage pool for the disks', 'main')
    .option('--address <cidr>', 'address of eth0 (repeatable; none = no NIC)', collect, [])
    .option('--mac <mac>', 'MAC of eth0 (default: generated)')
    .option('--role <role>', `role: ${lcRoles.join(' | ')}`, 'idle')
    .option('--driver <driver>', `partitioning driver: ${describeDrivers(driverNames())}`, defaultDriver)
    .option('--start', 'start it after creating it')
    .action(async (name: string, o: Record<string, string | string[] | boolean | undefined>) => {
      if (!lcRoles.includes(o.role as LcRole))
        throw new UnderstudyError(
          'INVALID_ARGUMENT',
          `--role: "${String(o.role)}" is not one of ${lcRoles.join(', ')}`,
        );
      const request = {
        name,
        image: o.image as string,
        cpus: o.cpus as string,
        cpuSharePercent: intOption(o.cpuShare as string, '--cpu-share'),
        memoryMb: intOption(o.memory as string, '--memory'),
        systemDiskMb: intOption(o.systemDisk as string, '--system-disk'),
        appDiskMb: intOption(o.appDisk as string, '--app-disk'),
        appMountPath: o.appMount as string,
        pool: o.pool as string,
        addresses: o.address as string[],
        mac: o.mac as string | undefined,
        role: o.role as LcRole,
        driver: o.driver as string,
        services: [serviceOfFlags(o)].filter((s) => s !== undefined),
      };
      const api = ctx.api();
      const created = api
        ? (await api.request<{ lc: LcView }>('POST', '/v1/lcs', { ...request, start: o.start === true })).lc
        : await withHost(ctx, async (app, host) => {
            const record = await createLc(app.db, host, request);
            const status = o.start ? await startLc(app.db, host, name) : await host.driver.status(name);
            return { ...record, status };
          });
      const warning = retiredDriverWarning(name, created.driver);
      if (warning) ctx.progress(warning);
      ctx.print(created, () => `created ${name}${o.start ? ` (${created.status.state})` : ''}`);
    });

  registerLcImportCommand(lc, ctx);
  registerLcServiceCommands(lc, ctx);

  lc.command('list')
    .description('the resource table, with the state of each LC')
    .action(async () => {
      const api = ctx.api();
      if (api) {
        const { lcs } = await api.request<{ lcs: LcView[] }>('GET', '/v1/lcs');
        ctx.print(lcs, () => renderLcList(lcs));
        return;
      }
      const app = ctx.openApp();
      try {
        const host = await app.hostIfReady();
        const views = await describeLcs(app.db, host);
        ctx.print(views, () => renderLcList(views));
      } finally {
        app.close();
      }
    });

  lc.command('show <name>')
    .description('one LC: resources, state, usage')
    .action(async (name: string) => {
      const api = ctx.api();
      const view = api
        ? (await api.request<{ lc: Parameters<typeof renderLc>[0] }>('GET', `/v1/lcs/${enc(name)}`)).lc
        : await withHost(
            ctx,
            async (app, host) => {
              const record = getLc(app.db, name);
              const status = await host.driver.status(name);
              const usage =
                status.state === 'stopped' ? undefined : await host.driver.usage(name).catch(() => undefined);
              return { ...record, status, usage };
            },
            { readOnly: true },
          );
      ctx.print(view, () => renderLc(view));
    });

  lc.command('start <name>')
    .description('boot the LC (its own init runs its start-up scripts)')
    .option('--no-wait', 'return when init runs, before start-up finishes')
    .option('--timeout <ms>', 'how long to wait for start-up', '30000')
    .action(async (name: string, o: { wait: boolean; timeout: string }) => {
      const options = { wait: o.wait, timeoutMs: intOption(o.timeout, '--timeout') };
      const api = ctx.api();
      const status = api
        ? (await api.request<{ status: LcStatus }>('POST', `/v1/lcs/${enc(name)}/start`, options)).status
        : await withHost(ctx, (app, host) => startLc(app.db, host, name, options));
      ctx.print(status, () => `${name} is ${status.state}`);
    });

  lc.command('stop <name>')
    .description('orderly shutdown; killed after the timeout')
    .option('--timeout <ms>', 'grace time before killing', '15000')
    .action(async (name: string, o: { timeout: string }) => {
      const options = { timeoutMs: intOption(o.timeout, '--timeout') };
      const api = ctx.api();
      const result = api
        ? (await api.request<{ result: StopResult }>('POST', `/v1/lcs/${enc(name)}/stop`, options)).result
        : await withHost(ctx, (app, host) => {
            getLc(app.db, name);
            return host.driver.stop(name, options);
          });
      ctx.print(
        result,
        () => `${name} stopped (${result.outcome}, ${(result.durationMs / 1000).toFixed(1)} s)`,
      );
    });

  lc.command('reboot <name>')
    .description('restart the LC')
    .action(async (name: string) => {
      const api = ctx.api();
      const status = api
        ? (await api.request<{ status: LcStatus }>('POST', `/v1/lcs/${enc(name)}/reboot`, {})).status
        : await withHost(ctx, async (app, host) => {
            getLc(app.db, name);
            await host.driver.reboot(name);
            await host.driver.waitUntilUp(name);
            return host.driver.status(name);
          });
      ctx.print(status, () => `${name} rebooted (${status.reboots} reboot(s) so far)`);
    });

  lc.command('exec <name> <command...>')
    .description('run a command inside the LC (use -- before its options)')
    .option('--timeout <ms>', 'kill the command after this long', String(24 * 3600_000))
    .action(async (name: string, command: string[], o: { timeout: string }) => {
      const timeoutMs = intOption(o.timeout, '--timeout');
      const api = ctx.api();
      const result = api
        ? (
            await api.request<{ result: ExecResult }>('POST', `/v1/lcs/${enc(name)}/exec`, {
              argv: command,
              timeoutMs,
            })
          ).result
        : await withHost(ctx, (app, host) => {
            getLc(app.db, name);
            return host.driver.exec(name, command, {
              okCodes: Array.from({ length: 256 }, (_, i) => i),
              timeoutMs,
            });
          });
      if (ctx.json()) ctx.print(result, () => '');
      else {
        process.stdout.write(result.stdout);
        process.stderr.write(result.stderr);
      }
      process.exitCode = result.exitCode ?? 1;
    });

  lc.command('destroy <name>')
    .description('delete the LC: its disks, NICs and record')
    .option('--force', 'stop it first if it runs')
    .action(async (name: string, o: { force?: boolean }) => {
      const api = ctx.api();
      if (api) await api.request('DELETE', `/v1/lcs/${enc(name)}${o.force ? '?force=true' : ''}`);
      else await withHost(ctx, (app, host) => destroyLc(app.db, host, name, { force: o.force }));
      ctx.print({ destroyed: name }, () => `${name} destroyed`);
    });

  lc.command('role <name> <role>')
    .description(`set the role: ${lcRoles.join(' | ')}`)
    .action(async (name: string, role: string) => {
      if (!lcRoles.includes(role as LcRole))
        throw new UnderstudyError('INVALID_ARGUMENT', `"${role}" is not one of ${lcRoles.join(', ')}`);
      const api = ctx.api();
      if (api) await api.request('POST', `/v1/lcs/${enc(name)}/role`, { role });
      else {
        const app = ctx.openApp();
        try {
          setRole(app.db, name, role as LcRole);
        } finally {
          app.close();
        }
      }
      ctx.print({ name, role }, () => `${name} is now ${role}`);
    });

  lc.command('standby-for <name>')
    .description('which unused LCs can stand in for this one (step 701), best fit first')
    .action(async (name: string) => {
      const api = ctx.api();
      let result: StandbySearchResult;
      if (api) result = await api.request<StandbySearchResult>('GET', `/v1/lcs/${enc(name)}/standby-for`);
      else {
        const app = ctx.openApp();
        try {
          result = findStandbys(getLc(app.db, name), listLcs(app.db));
        } finally {
          app.close();
        }
      }
      ctx.print(result, () => renderStandbys(name, result));
    });
  registerNicCommands(lc, ctx);
}
