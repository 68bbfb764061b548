/**
 * Builds a `SwitchSide` from the two things any partitioning driver offers — running a host program
 * in the LC's network context and running a command inside the LC — plus where the service keeps its
 * pid. The lead binds it as `serviceSide({ name, netExec: (a, o) => driver.netExec(name, a, o),
 * exec: (a, o) => driver.exec(name, a, o), servicePidFile })`.
 */
import type { ExecOptions, ExecResult } from '../core/index.ts';
import type { ServiceSignal, SwitchSide } from './types.ts';

export interface ServiceSideOptions {
  name: string;
  netExec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Runs argv inside the LC (its filesystem and pid namespace). */
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** The service's pid file inside the LC (the demo service: DEMO_PID_FILE). */
  servicePidFile: string;
}

/** The signal each request maps to; the demo service drains on USR1 and stops draining on USR2. */
export const serviceSignals: Record<ServiceSignal, string> = {
  drain: 'USR1',
  undrain: 'USR2',
  pause: 'STOP',
  resume: 'CONT',
};

/** Signals the pid in the pid file, when there is one and it runs. */
export const signalScript =
  'pid=$(cat "$2" 2>/dev/null) || exit 0; kill -0 "$pid" 2>/dev/null || exit 0; kill -s "$1" "$pid"';

export function serviceSide(options: ServiceSideOptions): SwitchSide {
  return {
    name: options.name,
    netExec: (argv, execOptions) => options.netExec(argv, execOptions),
    async signalService(signal) {
      // A fixed script; the signal and the pid file come in as arguments, never spliced into it. A
      // service that is not running has nothing to hold, resume or drain: the health checks judge it.
      await options.exec(['sh', '-c', signalScript, 'sh', serviceSignals[signal], options.servicePidFile], {
        timeoutMs: 10_000,
      });
    },
  };
}
