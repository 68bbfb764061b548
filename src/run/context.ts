/** What every step of a run gets, and the bindings of the switch and the disk copy to the driver. */
import { exec, type Logger } from '../core/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import { getLc, moveNicRecord, setNicAddresses, type LcRecord } from '../inventory/index.ts';
import type { HostContext, Manager } from '../manager/index.ts';
import type { MoveNic, ServiceSignal, SwitchSide } from '../switch/index.ts';
import type { RunJournal } from './journal.ts';
import type { ResolvedRunOptions, RunEvent, RunFacts } from './types.ts';

export interface RunContext {
  runId: string;
  manager: Manager;
  host: HostContext;
  catalogue: Catalogue;
  journal: RunJournal;
  options: ResolvedRunOptions;
  facts: RunFacts;
  logger: Logger;
  emit(event: Omit<RunEvent, 'runId'>): void;
  signal?: AbortSignal;
}

/** The part of a run's context that binding a switch needs (the CLI's `switch` builds one by hand). */
export type SwitchContext = Pick<RunContext, 'manager' | 'host' | 'options' | 'facts'>;

export const saveFacts = (c: RunContext): void => c.journal.saveFacts(c.runId, c.facts);
export const lc1 = (c: RunContext): LcRecord => getLc(c.manager.db, c.options.lc);
export function standby(c: RunContext): LcRecord {
  if (!c.facts.standby) throw new Error('no standby chosen yet');
  return getLc(c.manager.db, c.facts.standby);
}

const serviceSignals: Record<ServiceSignal, string> = {
  drain: 'USR1',
  undrain: 'USR2',
  pause: 'STOP',
  resume: 'CONT',
};

/**
 * The service inside an LC, as the switch sees it: signals go to the pid in the service's pid file.
 * (The demo service: SIGUSR1 drain, SIGUSR2 undrain; SIGSTOP/SIGCONT hold new connections in the backlog.)
 */
export function switchSide(c: SwitchContext, lc: string): SwitchSide {
  return {
    name: lc,
    netExec: (argv, options) => c.host.driver.netExec(lc, argv, options),
    async signalService(signal) {
      // A service that is not running has nothing to hold, resume or drain: the health checks judge it.
      const script =
        'pid=$(cat "$2" 2>/dev/null) || exit 0; kill -0 "$pid" 2>/dev/null || exit 0; kill -s "$1" "$pid"';
      await c.host.driver.exec(lc, [
        'sh',
        '-c',
        script,
        'sh',
        serviceSignals[signal],
        c.options.servicePidFile,
      ]);
    },
  };
}

/** Moves a NIC with the driver and keeps the resource table in step with the devices. */
export function moveNicBinding(c: SwitchContext): MoveNic {
  return async ({ from, to, nic, addresses }) => {
    const source = getLc(c.manager.db, from.name);
    // The NIC carries into `to` the addresses the switch says, not those recorded for it in `from`.
    const carried = source.nics.map((n) => (n.name === nic ? { ...n, addresses: [...addresses] } : n));
    const newName = await c.host.driver.moveNic(
      { ...source, nics: carried },
      nic,
      getLc(c.manager.db, to.name),
    );
    moveNicRecord(c.manager.db, from.name, nic, to.name, newName);
    setNicAddresses(c.manager.db, to.name, newName, [...addresses]);
    return newName;
  };
}

/** Writes the addresses the LC's NICs really hold into the resource table (after a switch). */
export async function syncNicRecords(c: SwitchContext, lc: string): Promise<void> {
  for (const nic of getLc(c.manager.db, lc).nics) {
    const out = await c.host.driver.netExec(lc, ['ip', '-o', '-4', 'addr', 'show', 'dev', nic.name]);
    const addresses = out.stdout
      .split('\n')
      .map((l) => /inet (\S+)/.exec(l)?.[1])
      .filter((a): a is string => a !== undefined);
    setNicAddresses(c.manager.db, lc, nic.name, addresses);
  }
}

/**
 * The last copy of the application disk, from the drained LC1 to the held LC2 (stateful switch):
 * rsync of what changed (nanosecond mtimes, deletions, hard links, ACLs, xattrs).
 */
export async function syncAppDisk(c: SwitchContext, from: LcRecord, to: LcRecord): Promise<number> {
  const started = performance.now();
  const source = c.host.driver.diskPath(from, 'app');
  const target = c.host.driver.diskPath(to, 'app');
  await exec(
    ['rsync', '-aHAX', '--numeric-ids', '--delete', '--modify-window=-1', `${source}/`, `${target}/`],
    { timeoutMs: 30 * 60_000 },
  );
  return performance.now() - started;
}
