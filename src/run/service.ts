/**
 * Which service a run moves: the first service LC1 declares (resource table), or, for an LC that declares
 * none, the pid-file definition of the run's own flags (`--port`, `--health-path`, `--service-pid-file`):
 * the convention of the busybox images (a service writing its pid file, draining on SIGUSR1 and
 * undraining on SIGUSR2, answering `GET <health path>`).
 */
import { validateServices, type ServiceDefinition } from '../inventory/index.ts';
import type { ResolvedRunOptions } from './types.ts';

export interface ServiceFlagsOfRun {
  port: number;
  healthPath: string;
  servicePidFile: string;
}

export function pidFileService(o: ServiceFlagsOfRun): ServiceDefinition {
  const [service] = validateServices(
    [
      {
        name: 'service',
        pidFile: o.servicePidFile,
        ports: [o.port],
        health: { kind: 'http', path: o.healthPath, status: 200 },
        drain: { kind: 'signal', signal: 'USR1' },
        undrain: { kind: 'signal', signal: 'USR2' },
        hold: { kind: 'signal' },
        versionPath: '/version',
        cut: 'http',
      },
    ],
    'run flags',
  );
  return service as ServiceDefinition;
}

/** The service of a run (runs journalled before services were declared have none recorded). */
export function runService(options: ResolvedRunOptions): ServiceDefinition {
  return options.service ?? pidFileService(options);
}
