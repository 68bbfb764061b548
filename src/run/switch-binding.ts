/**
 * The one binding of the switch to this host: the sides are the LCs' declared service driven over the
 * driver (service-side.ts), a NIC moves with the driver and the resource table follows it, and
 * the final sync of a stateful switch copies every data disk through the disk store. `understudy
 * switch`, the patch run, the rollback and the recovery of an interrupted switch all use it.
 */
import { UnderstudyError } from '../core/index.ts';
import type { HostContext } from '../host/index.ts';
import {
  dataDisks,
  diskRole,
  getLc,
  moveNicRecord,
  setNicAddresses,
  setRole,
  setServices,
  type LcRecord,
  type LcRole,
  type ServiceDefinition,
} from '../inventory/index.ts';
import type { Db } from '../store/index.ts';
import type { SwitchBinding, SwitchPlan, SwitchSide } from '../switch/index.ts';
import { serviceControl } from './service-side.ts';
import { pidFileService } from './service.ts';

/** The pid file of the busybox images' service (for LCs that declare no service). */
export const defaultServicePidFile = '/run/demo.pid';

export interface BindSwitchOptions {
  from: string;
  to: string;
  /** The data disks are copied after LC1's last write and before LC2 serves. */
  stateful: boolean;
  /** The service moved (both LCs run it: LC2 boots from LC1's copy). Default: the one LC1 declares. */
  service?: ServiceDefinition;
}

/**
 * The service a switch between these LCs moves: the one `from` declares, else the one `to` declares
 * (after a switch both run it), else the busybox images' pid-file service.
 */
export function switchedService(db: Db, from: string, to: string): ServiceDefinition {
  return (
    getLc(db, from).services[0] ??
    getLc(db, to).services[0] ??
    pidFileService({ port: 80, healthPath: '/health', servicePidFile: defaultServicePidFile })
  );
}

/** An LC as the switch (and the health check) sees it: its network context and its service. */
export function lcSide(host: HostContext, lc: string, service: ServiceDefinition): SwitchSide {
  return serviceControl(host, lc, service).side;
}

export function bindSwitch(db: Db, host: HostContext, o: BindSwitchOptions): SwitchBinding {
  const service = o.service ?? switchedService(db, o.from, o.to);
  const side = (lc: string): SwitchSide => lcSide(host, lc, service);
  return {
    from: side(o.from),
    to: side(o.to),
    async moveNic({ from, to, nic, addresses }) {
      const source = getLc(db, from.name);
      // The NIC carries into `to` the addresses the switch says, not those recorded for it in `from`.
      const carried = source.nics.map((n) => (n.name === nic ? { ...n, addresses: [...addresses] } : n));
      const newName = await host.driver.moveNic({ ...source, nics: carried }, nic, getLc(db, to.name));
      moveNicRecord(db, from.name, nic, to.name, newName);
      setNicAddresses(db, to.name, newName, [...addresses]);
      return newName;
    },
    finalSync: o.stateful
      ? async () => void (await syncDataDisks(host, getLc(db, o.from), getLc(db, o.to)))
      : undefined,
  };
}

/** The binding of a journalled switch plan (recovery after a crash). */
export function bindPlannedSwitch(db: Db, host: HostContext, plan: SwitchPlan): SwitchBinding {
  return bindSwitch(db, host, { from: plan.from.lc, to: plan.to.lc, stateful: plan.stateful });
}

/**
 * Makes every data disk of `to` equal to the disk of `from` with the same role (the final sync, and
 * the rollback's bulk copy). Resolves with how long it took, in ms.
 */
export async function syncDataDisks(host: HostContext, from: LcRecord, to: LcRecord): Promise<number> {
  const started = performance.now();
  for (const disk of dataDisks(from)) {
    const target = to.disks.find((d) => diskRole(d) === diskRole(disk));
    if (!target)
      throw new UnderstudyError(
        'DISK_NOT_FOUND',
        `"${to.name}" has no ${diskRole(disk)} disk to receive "${from.name}"'s ${disk.name} disk`,
      );
    await host.disks.sync({ lc: from, disk: disk.name }, { lc: to, disk: target.name });
  }
  return performance.now() - started;
}

/** Writes the addresses the LC's NICs really hold into the resource table (after a switch). */
export async function syncNicRecords(db: Db, host: HostContext, lc: string): Promise<void> {
  for (const nic of getLc(db, lc).nics) {
    const out = await host.driver.netExec(lc, ['ip', '-o', '-4', 'addr', 'show', 'dev', nic.name]);
    const addresses = out.stdout
      .split('\n')
      .map((l) => /inet (\S+)/.exec(l)?.[1])
      .filter((a): a is string => a !== undefined);
    setNicAddresses(db, lc, nic.name, addresses);
  }
}

/** After a switch: the resource table holds the NICs as they now are and the roles as they now are. */
export async function recordSwitch(
  db: Db,
  host: HostContext,
  o: { from: string; to: string; fromRole: LcRole },
): Promise<void> {
  await syncNicRecords(db, host, o.from);
  await syncNicRecords(db, host, o.to);
  // `to` now runs what `from` ran (it booted from its copy): it declares the same services.
  const moved = getLc(db, o.from).services;
  if (moved.length > 0 && getLc(db, o.to).services.length === 0) setServices(db, o.to, moved);
  setRole(db, o.to, 'active');
  setRole(db, o.from, o.fromRole);
}
