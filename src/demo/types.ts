/** The demo's options, its report, and what its two paths (lxc, namespace) share. */
import type { App, HostContext } from '../app/index.ts';
import type { RunEvent, RunRecord } from '../run/index.ts';
import type { SwitchMethod } from '../switch/index.ts';
import type { ClientLoad, ClientLoadReport } from './client-load.ts';

export type DemoDriver = 'lxc' | 'namespace';

export interface DemoOptions {
  /** lxc: Debian nginx in an LXC container (default); namespace: the busybox demo service. */
  driver?: DemoDriver;
  method?: SwitchMethod;
  rate?: number;
  keep?: boolean;
  /** Where the demo host lives (default: a new directory under /tmp). */
  stateDir?: string;
  /** lxc: where debootstrapped images are cached by their inputs (default /var/cache/understudy). */
  imageCacheDir?: string;
  progress?: (line: string) => void;
}

export interface DemoReport {
  stateDir: string;
  driver: DemoDriver;
  /** What served (e.g. "Debian nginx in an unprivileged LXC container (systemd)"). */
  service: string;
  /** What the patch moved (e.g. "nginx 1.22.1-9+deb12u9 → 1.22.1-9+deb12u11, …"). */
  patch: string;
  /** The demo host's bridge and the client's network namespace (both gone after the teardown). */
  bridge: string;
  client: string;
  run: RunRecord;
  load: ClientLoadReport;
  versionBefore: string | undefined;
  versionAfter: string | undefined;
  /** False when the service keeps no data the demo writes: no data check. */
  stateful: boolean;
  dataChecked: number;
  dataLost: string[];
  wallMs: number;
}

/** What both demos share: the demo host, its network prefix, the teardown list, the load marks. */
export interface DemoContext {
  app: App;
  prefix: string;
  rate: number;
  method: SwitchMethod;
  imageCacheDir: string;
  progress: (line: string) => void;
  /** Teardown steps, run first to last (push what must go last, unshift what must go first). */
  cleanup: (() => Promise<unknown>)[];
  /** The host context (drivers, network) once the host exists; removes every LC at teardown. */
  host(): Promise<HostContext>;
  /** The run's event handler: marks the switch window on the load, prints the steps. */
  onEvent(load: ClientLoad): (event: RunEvent) => void;
}
