/**
 * An LC's declared service (see inventory's service.ts) driven through the partitioning driver: its
 * main PID (systemd's, or the pid file's), its drain, undrain and hold as the switch asks for them
 * (`SwitchSide.signalService`), its health check and whether its unit is active.
 */
import { UnderstudyError, sleep, type ExecResult } from '../core/index.ts';
import type { HostContext } from '../host/index.ts';
import { undrainOf, type ServiceAction, type ServiceDefinition } from '../inventory/index.ts';
import {
  checkHealth,
  type CutAction,
  type HealthCheck,
  type HealthOutcome,
  type ServiceSignal,
  type SwitchSide,
} from '../switch/index.ts';

/** Signals the main process: systemd's MainPID of the unit ($2), or the pid in the file ($2). */
const killMainUnit =
  'pid=$(systemctl show -p MainPID --value "$2") || exit 1; [ "${pid:-0}" -gt 0 ] || exit 0; kill -s "$1" "$pid"';
const killPidFile =
  'pid=$(cat "$2" 2>/dev/null) || exit 0; kill -0 "$pid" 2>/dev/null || exit 0; kill -s "$1" "$pid"';

const actionTimeoutMs = 60_000;

export interface ServiceControl {
  readonly lc: string;
  readonly service: ServiceDefinition;
  /** The service's main process id inside the LC (undefined when it does not run). */
  mainPid(): Promise<number | undefined>;
  /** Carries out one drain/undrain action. */
  act(action: ServiceAction): Promise<void>;
  /** The LC as the switch sees it, with this service behind `signalService`. */
  side: SwitchSide;
  /** The service's health check, from inside the LC against address:port (the first port). */
  checkHealth(address: string, options?: { retries?: number; intervalMs?: number }): Promise<HealthOutcome>;
  /** `systemctl is-active` of the unit (a pid-file service: whether its main process runs). */
  isActive(): Promise<{ active: boolean; state: string }>;
}

/** The health check of the definition in the switch's terms (journalled with the switch plan). */
export function switchHealthOf(service: ServiceDefinition): HealthCheck {
  // A command check runs inside the LC; the switch checks from the network, so it connects instead.
  return service.health.kind === 'http'
    ? {
        kind: 'http',
        path: service.health.path,
        expectStatus: service.health.status,
        timeoutMs: 2000,
        retries: 5,
        intervalMs: 200,
      }
    : { kind: 'tcp', timeoutMs: 2000, retries: 5, intervalMs: 200 };
}

export function serviceControl(host: HostContext, lc: string, service: ServiceDefinition): ServiceControl {
  const inside = (argv: readonly string[], okCodes?: number[]): Promise<ExecResult> =>
    host.driver.exec(lc, argv, { timeoutMs: actionTimeoutMs, ...(okCodes ? { okCodes } : {}) });
  const unit = service.unit;
  const signalMain = async (signal: string): Promise<void> => {
    if (unit) await inside(['sh', '-c', killMainUnit, 'sh', signal, unit]);
    else await inside(['sh', '-c', killPidFile, 'sh', signal, service.pidFile ?? '']);
  };
  /** Every process of the service: the unit's whole cgroup, or the main process of a pid file. */
  const signalAll = async (signal: string): Promise<void> => {
    if (unit) await inside(['systemctl', 'kill', '--kill-whom=all', '-s', signal, unit]);
    else await signalMain(signal);
  };
  const act = async (action: ServiceAction): Promise<void> => {
    switch (action.kind) {
      case 'none':
        return;
      case 'signal':
        return signalMain(action.signal);
      case 'command':
        await inside(action.argv);
        return;
      case 'stop':
        if (unit) await inside(['systemctl', 'stop', unit]);
        else await signalMain('TERM');
        return;
      case 'start':
        if (!unit)
          throw new UnderstudyError(
            'SERVICE_INVALID',
            `The service "${service.name}" of ${lc} has no unit to start (it is known by its pid file only)`,
            { hint: 'Give it an undrain that does not start it, or a systemd unit.' },
          );
        await inside(['systemctl', 'start', unit]);
        return;
      case 'reload':
        if (unit) await inside(['systemctl', 'reload', unit]);
        else await signalMain('HUP');
        return;
    }
  };
  const onSignal: Record<ServiceSignal, () => Promise<void>> = {
    drain: () => act(service.drain),
    undrain: () => act(undrainOf(service)),
    pause: async () => {
      if (service.hold.kind === 'signal') await signalAll('STOP');
      else if (service.hold.kind === 'command') await inside(service.hold.pause);
    },
    resume: async () => {
      if (service.hold.kind === 'signal') await signalAll('CONT');
      else if (service.hold.kind === 'command') await inside(service.hold.resume);
    },
  };
  const side: SwitchSide = {
    name: lc,
    netExec: (argv, options) => host.driver.netExec(lc, argv, options),
    signalService: (signal) => onSignal[signal](),
    // `http`: the switch asks the service itself over HTTP (its own default); `none`: the switch is told
    // at once, without a request, and cuts by connections.
    ...(service.cut === 'none'
      ? {
          cutControl: (action: CutAction) =>
            Promise.reject(
              new UnderstudyError(
                'SWITCH_STEP_FAILED',
                `The service "${service.name}" on ${lc} does not offer the cut protocol (${action}): its definition says cut: none`,
                { hint: 'It is switched with the connection drain.', details: { lc, action } },
              ),
            ),
        }
      : {}),
  };
  const port = service.ports[0] ?? 80;
  return {
    lc,
    service,
    side,
    act,
    async mainPid() {
      const out = unit
        ? await inside(['systemctl', 'show', '-p', 'MainPID', '--value', unit])
        : await inside(['cat', service.pidFile ?? ''], [0, 1]);
      const pid = Number(out.stdout.trim());
      return out.exitCode === 0 && Number.isInteger(pid) && pid > 0 ? pid : undefined;
    },
    async checkHealth(address, options = {}) {
      const retries = options.retries ?? 19;
      const intervalMs = options.intervalMs ?? 250;
      const health = service.health;
      if (health.kind !== 'command')
        return checkHealth(
          side,
          { ...switchHealthOf(service), timeoutMs: 3000, retries, intervalMs },
          address,
          port,
        );
      let last = { ok: false, detail: 'not run' };
      for (let i = 0; i <= retries; i++) {
        if (i > 0) await sleep(intervalMs);
        last = await host.driver.exec(lc, health.argv, { timeoutMs: 10_000 }).then(
          () => ({ ok: true, detail: `${health.argv.join(' ')} exited 0` }),
          (error: unknown) => ({
            ok: false,
            detail: `${health.argv.join(' ')} failed: ${error instanceof Error ? error.message.split('\n').slice(-3).join(' / ') : String(error)}`,
          }),
        );
        if (last.ok) return { ...last, attempts: i + 1 };
      }
      return { ...last, attempts: retries + 1 };
    },
    async isActive() {
      if (unit) {
        const r = await inside(['systemctl', 'is-active', unit], [0, 1, 3, 4]);
        const state = r.stdout.trim() || 'unknown';
        return { active: state === 'active', state };
      }
      const pid = await this.mainPid();
      return { active: pid !== undefined, state: pid === undefined ? 'no process' : `pid ${pid}` };
    },
  };
}
