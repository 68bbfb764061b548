/**
 * The health of an LC's service as the API and the console show it: the service the LC declares (its
 * first, the one a patch run moves) checked the way the patch run checks it, once: an HTTP GET of its
 * health path at its first port expecting its status, a TCP connect to that port, or its command run
 * inside the LC; HTTP and TCP from the LC's network context at its first address. A query may ask for
 * an HTTP GET of another path or port instead (expecting 200).
 */
import { UnderstudyError, isUnderstudyError } from '../core/index.ts';
import type { HostContext } from '../app/index.ts';
import { getLc, type ServiceDefinition } from '../inventory/index.ts';
import { switchHealthOf } from '../run/index.ts';
import { checkHealth, type HealthCheck, type SwitchSide } from '../switch/index.ts';
import type { Db } from '../store/index.ts';

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

const timeoutMs = 1500;
const once = { timeoutMs, retries: 0, intervalMs: 0 };

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
      ? { kind: 'http', path: o.query.path ?? '/', expectStatus: 200, ...once }
      : { ...switchHealthOf(service), ...once };
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
  const url =
    check.kind === 'http'
      ? `http://${address}:${port}${check.path}`
      : check.kind === 'tcp'
        ? `tcp://${address}:${port}`
        : null;
  const base = {
    lc: o.lc,
    service: service?.name ?? null,
    check: describeCheck(o.lc, check, address, port ?? 0),
    url,
  };
  const started = performance.now();
  try {
    const outcome = await checkHealth(side, check, address, port ?? 0);
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
