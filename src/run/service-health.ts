/**
 * The health of an LC's service, checked once, the way the patch run checks it (switch.checkHealth
 * with the service's declared check, switchHealthOf): an HTTP GET of its health path at its port
 * expecting its status, a TCP connect to that port, or its command run inside the LC. One
 * implementation for every caller that reports a service's health:
 * - checkServiceHealth: the API and the console, for an LC's first declared service at its first
 *   address, from the LC's network context. A query may ask for an HTTP GET of another path or port
 *   instead (expecting 200).
 * - checkRunServiceHealth: the fleet agent, after a switch, for the service a run moved, at the
 *   run's service address, from the host's network (where its clients are), as the run's watch does.
 */
import { UnderstudyError, exec, isUnderstudyError } from '../core/index.ts';
import type { HostContext } from '../host/index.ts';
import { getLc, type ServiceDefinition } from '../inventory/index.ts';
import { checkHealth, type HealthCheck, type SwitchSide } from '../switch/index.ts';
import type { Db } from '../store/index.ts';
import { runService } from './service.ts';
import { switchHealthOf } from './service-side.ts';
import type { RunRecord } from './types.ts';

export interface ServiceHealth {
  lc: string;
  /** The declared service that was checked (null when the LC declares none). */
  service: string | null;
  /** What was checked, e.g. `GET http://198.18.0.10:80/ expecting 200` or `connect 198.18.0.10:5432`. */
  check: string | null;
  /** The URL of an HTTP check (`tcp://address:port` for a TCP connect, null for a command). */
  url: string | null;
  /** `unknown` when the LC has no address, is not running, or declares no service to check. */
  state: 'healthy' | 'failing' | 'unknown';
  /** The HTTP status an HTTP check got. */
  status: number | null;
  ms: number | null;
  /** Why it failed (or why the state is unknown), else null. */
  error: string | null;
}

/** An HTTP GET of `path` at `port` instead of the declared check (either one alone keeps the other's default). */
export interface ServiceHealthQuery {
  port?: number;
  path?: string;
}

const defaultTimeoutMs = 1500;

/** The declared check of `service`, attempted once within `timeoutMs`. */
function onceOf(service: ServiceDefinition, timeoutMs: number): HealthCheck {
  return { ...switchHealthOf(service), timeoutMs, retries: 0, intervalMs: 0 };
}

function describeCheck(lc: string, check: HealthCheck, address: string, port: number): string {
  switch (check.kind) {
    case 'http':
      return `GET http://${address}:${port}${check.path} expecting ${check.expectStatus}`;
    case 'tcp':
      return `connect ${address}:${port}`;
    case 'command':
      return `"${check.argv.join(' ')}" inside ${lc}`;
  }
}

/** The host's own network as a check's side (HTTP and TCP run there); a command check runs inside `lc`. */
export function hostNetworkSide(host: HostContext, lc: string): SwitchSide {
  return {
    name: 'host',
    netExec: (argv, options) => (host.hostExec ? host.hostExec(argv, options) : exec(argv, options)),
    exec: (argv, options) => host.driver.exec(lc, argv, options),
    signalService: () =>
      Promise.reject(new UnderstudyError('INTERNAL', 'A health check does not signal the service')),
  };
}

/** Runs `check` once from `side` and reports it; an LC gone under the check is `failing`. */
async function checkOnce(o: {
  lc: string;
  service: string | null;
  side: SwitchSide;
  check: HealthCheck;
  address: string;
  port: number;
}): Promise<ServiceHealth> {
  const { check, address, port } = o;
  const url =
    check.kind === 'http'
      ? `http://${address}:${port}${check.path}`
      : check.kind === 'tcp'
        ? `tcp://${address}:${port}`
        : null;
  const base = { lc: o.lc, service: o.service, check: describeCheck(o.lc, check, address, port), url };
  const started = performance.now();
  try {
    const outcome = await checkHealth(o.side, check, address, port);
    return {
      ...base,
      state: outcome.ok ? 'healthy' : 'failing',
      status: outcome.status ?? null,
      ms: Math.round(performance.now() - started),
      error: outcome.ok ? null : outcome.detail,
    };
  } catch (error) {
    // The LC stopped under the check, or its network context could not be entered.
    if (!isUnderstudyError(error)) throw error;
    return { ...base, state: 'failing', status: null, ms: null, error: error.message };
  }
}

export async function checkServiceHealth(o: {
  db: Db;
  host: HostContext | undefined;
  lc: string;
  query: ServiceHealthQuery;
}): Promise<ServiceHealth> {
  const record = getLc(o.db, o.lc);
  const service: ServiceDefinition | undefined = record.services[0];
  const address = record.nics[0]?.addresses[0]?.split('/')[0];
  const adHoc = o.query.port !== undefined || o.query.path !== undefined;
  const port = o.query.port ?? service?.ports[0];
  const unknown = (error: string | null): ServiceHealth => ({
    lc: o.lc,
    service: service?.name ?? null,
    check: null,
    url: null,
    state: 'unknown',
    status: null,
    ms: null,
    error,
  });
  if (!service && !adHoc)
    return unknown(`${o.lc} declares no service; declare it with: understudy lc service set ${o.lc} …`);
  const state = o.host ? (await o.host.driver.status(o.lc)).state : 'stopped';
  if (!o.host || !address || state !== 'running') return unknown(null);
  const check: HealthCheck =
    adHoc || !service
      ? {
          kind: 'http',
          path: o.query.path ?? '/',
          expectStatus: 200,
          timeoutMs: defaultTimeoutMs,
          retries: 0,
          intervalMs: 0,
        }
      : onceOf(service, defaultTimeoutMs);
  if (port === undefined && check.kind !== 'command')
    return unknown(`${o.lc}'s service "${service?.name ?? ''}" declares no port; give ?port=`);
  const host = o.host;
  const side: SwitchSide = {
    name: o.lc,
    netExec: (argv, options) => host.driver.netExec(o.lc, argv, options),
    exec: (argv, options) => host.driver.exec(o.lc, argv, options),
    signalService: () =>
      Promise.reject(new UnderstudyError('INTERNAL', 'A health check does not signal the service')),
  };
  return checkOnce({ lc: o.lc, service: service?.name ?? null, side, check, address, port: port ?? 0 });
}

/**
 * The service a run moved, checked once with its declared check at the run's service address and the
 * service's first port (the run's port when it declares none), from the host's network; a command
 * check runs inside the LC that serves after the switch (the run's standby). `unknown` when the run
 * recorded no service address or no standby.
 */
export async function checkRunServiceHealth(o: {
  host: HostContext;
  run: RunRecord;
  timeoutMs?: number;
}): Promise<ServiceHealth> {
  const { run } = o;
  const service = runService(run.options);
  const address = run.facts.serviceAddress?.split('/')[0];
  const serving = run.standby;
  if (!address || !serving)
    return {
      lc: serving ?? run.lc,
      service: service.name,
      check: null,
      url: null,
      state: 'unknown',
      status: null,
      ms: null,
      error: `run ${run.id} recorded no ${address ? 'standby' : 'service address'}`,
    };
  return checkOnce({
    lc: serving,
    service: service.name,
    side: hostNetworkSide(o.host, serving),
    check: onceOf(service, o.timeoutMs ?? defaultTimeoutMs),
    address,
    port: service.ports[0] ?? run.options.port,
  });
}
