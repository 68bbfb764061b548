/**
 * The one binding of the switch to this host: the sides are `serviceSide`s over the driver (what the
 * switch's own tests exercise), a NIC moves with the driver and the resource table follows it, and
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
  type LcRecord,
  type LcRole,
} from '../inventory/index.ts';
import type { Db } from '../store/index.ts';
import { serviceSide, type SwitchBinding, type SwitchPlan, type SwitchSide } from '../switch/index.ts';

/** Where the demo service (and any service following its contract) keeps its pid inside an LC. */
export const defaultServicePidFile = '/run/demo.pid';

export interface BindSwitchOptions {
  from: string;
  to: string;
  /** The data disks are copied after LC1's last write and before LC2 serves. */
  stateful: boolean;
  servicePidFile?: string;
}

/** An LC as the switch (and the health check) sees it: its network context and its service. */
export function lcSide(host: HostContext, lc: string, servicePidFile = defaultServicePidFile): SwitchSide {
  return serviceSide({
    name: lc,
    netExec: (argv, options) => host.driver.netExec(lc, argv, options),
    exec: (argv, options) => host.driver.exec(lc, argv, options),
    servicePidFile,
  });
}

export function bindSwitch(db: Db, host: HostContext, o: BindSwitchOptions): SwitchBinding {
  const side = (lc: string): SwitchSide => lcSide(host, lc, o.servicePidFile);
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
  setRole(db, o.to, 'active');
  setRole(db, o.from, o.fromRole);
}
