/** The service flags of `lc create` and `understudy lc service set|show|clear`. */
import type { Command } from 'commander';

import { requireRoot } from '../../core/index.ts';
import {
  getLc,
  serviceFromFlags,
  setServices,
  type ServiceDefinition,
  type ServiceFlags,
} from '../../inventory/index.ts';
import type { CliContext } from '../context.ts';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Adds the flags of one service to a command. */
export function serviceOptions(command: Command): Command {
  return command
    .option('--service-unit <unit>', 'the service: its systemd unit (e.g. nginx.service)')
    .option('--service-pid-file <path>', 'the service: its pid file (images without systemd)')
    .option('--service-name <name>', 'the service: its name (default: from the unit)')
    .option('--service-port <port>', 'the service: a port it listens on (repeatable; default 80)', collect)
    .option('--health <check>', 'health check: http:<path>[:<status>] | tcp | command:<argv>')
    .option('--drain <how>', 'drain: stop | reload | none | signal:<SIG> | command:<argv>')
    .option('--undrain <how>', 'undoing the drain (default: start after stop, else none)')
    .option('--hold <how>', 'stateful hold: signal (STOP/CONT) | none | command:<pause argv>;<resume argv>')
    .option('--data <path>', 'a path holding its data (repeatable)', collect)
    .option('--version-path <path>', 'HTTP path answering JSON with a version field')
    .option('--cut <protocol>', "http: it speaks the switch's cut protocol | none (default)");
}

/** The service the flags describe (undefined when neither --service-unit nor --service-pid-file). */
export function serviceOfFlags(o: Record<string, unknown>): ServiceDefinition | undefined {
  const text = (key: string): string | undefined => (typeof o[key] === 'string' ? o[key] : undefined);
  const list = (key: string): string[] | undefined =>
    Array.isArray(o[key]) ? (o[key] as string[]) : undefined;
  const flags: ServiceFlags = {
    name: text('serviceName'),
    unit: text('serviceUnit'),
    pidFile: text('servicePidFile'),
    port: list('servicePort'),
    health: text('health'),
    drain: text('drain'),
    undrain: text('undrain'),
    hold: text('hold'),
    data: list('data'),
    versionPath: text('versionPath'),
    cut: text('cut'),
  };
  return serviceFromFlags(flags);
}

const describe = (s: ServiceDefinition): string =>
  [
    `${s.name}: ${s.unit ? `unit ${s.unit}` : `pid file ${s.pidFile ?? ''}`}, ports ${s.ports.join(',')}`,
    `  health ${JSON.stringify(s.health)}; drain ${JSON.stringify(s.drain)}; hold ${JSON.stringify(s.hold)}`,
    `  data ${s.data.join(', ') || '-'}`,
  ].join('\n');

export function registerLcServiceCommands(lc: Command, ctx: CliContext): void {
  const service = lc.command('service').description('the service an LC runs (what a patch run moves)');
  serviceOptions(service.command('set <lc>').description("declare the LC's service (replaces it)")).action(
    async (name: string, o: Record<string, unknown>) => {
      const definition = serviceOfFlags(o);
      const services = definition ? [definition] : [];
      const api = ctx.api();
      let stored: ServiceDefinition[] = services;
      if (api)
        stored = (
          await api.request<{ services: ServiceDefinition[] }>(
            'PUT',
            `/v1/lcs/${encodeURIComponent(name)}/services`,
            { services },
          )
        ).services;
      else {
        requireRoot('this command');
        const app = ctx.openApp();
        try {
          getLc(app.db, name);
          setServices(app.db, name, services);
        } finally {
          app.close();
        }
      }
      const shown = stored[0] ?? null;
      ctx.print(shown, () => (shown ? describe(shown) : `${name} declares no service now`));
    },
  );
  service
    .command('show <lc>')
    .description('the services the LC declares')
    .action(async (name: string) => {
      const api = ctx.api();
      let services: ServiceDefinition[];
      if (api)
        services = (
          await api.request<{ services: ServiceDefinition[] }>(
            'GET',
            `/v1/lcs/${encodeURIComponent(name)}/services`,
          )
        ).services;
      else {
        const app = ctx.openApp();
        try {
          services = getLc(app.db, name).services;
        } finally {
          app.close();
        }
      }
      ctx.print(services, () =>
        services.length === 0 ? `${name} declares no service` : services.map(describe).join('\n'),
      );
    });
}
