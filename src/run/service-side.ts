/**
 * An LC's declared service (see inventory's service.ts) driven through the partitioning driver: its
 * main PID (systemd's, or the pid file's), its drain, undrain and hold as the switch asks for them
 * (`SwitchSide.signalService`), its health check and whether its unit is active.
 */
import { UnderstudyError, type ExecResult } from '../core/index.ts';
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
  /**
   * The service's health check against address:port (the first port) from the LC's network context,
   * or its command inside the LC.
   */
  checkHealth(address: string, options?: { retries?: number; intervalMs?: number }): Promise<HealthOutcome>;
  /** `systemctl is-active` of the unit (a pid-file service: whether its main process runs). */
  isActive(): Promise<{ active: boolean; state: string }>;
}

/** How long one attempt of a service's health check may take (a command check: its run inside the LC). */
const healthTimeoutMs = 2000;

/**
 * The health check of the definition in the switch's terms (journalled with the switch plan): an
 * HTTP GET or a TCP connect to the service's port from the LC's network context, or the command run
 * inside the LC through the driver's exec.
 */
export function switchHealthOf(service: ServiceDefinition): HealthCheck {
  const timing = { timeoutMs: healthTimeoutMs, retries: 5, intervalMs: 200 };
  switch (service.health.kind) {
    case 'http':
      return { kind: 'http', path: service.health.path, expectStatus: service.health.status, ...timing };
    case 'tcp':
      return { kind: 'tcp', ...timing };
    case 'command':
      return { kind: 'command', argv: [...service.health.argv], ...timing };
  }
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
    exec: (argv, options) => host.driver.exec(lc, argv, options),
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
    checkHealth(address, options = {}) {
      const check = {
        ...switchHealthOf(service),
        timeoutMs: 3000,
        retries: options.retries ?? 19,
        intervalMs: options.intervalMs ?? 250,
      };
      return checkHealth(side, check, address, port);
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
