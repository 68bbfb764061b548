/**
 * Binds `understudy switch <from> <to>` (the switch on its own, outside a patch run) to the resource
 * table and the driver: the service address is the one <from> holds, LC1's new address is free in the
 * subnet, the sides drive the service the LCs declare (service-side.ts), moved NICs are recorded.
 */
import { UnderstudyError } from '../core/index.ts';
import { getLc, listLcs, type LcRecord } from '../inventory/index.ts';
import type { HostContext } from '../host/index.ts';
import type { Db } from '../store/index.ts';
import {
  SwitchJournal,
  type SwitchBinding,
  type SwitchPlanInput,
  type SwitchRequest,
} from '../switch/index.ts';
import type { TreeCheckResult } from '../disk-copy/index.ts';
import {
  bindSwitch,
  recordSwitch,
  switchedService,
  syncNicRecords,
  verifyDataDisks,
} from './switch-binding.ts';
import { switchHealthOf } from './service-side.ts';
import { freeAddress, planSwitch } from './switch-plan.ts';

export type LcSwitchRequest = SwitchRequest;

/**
 * The service address an LC holds: the one the last switch to it moved there (an LC that took over
 * the service holds its own address too), or, for the active LC, its first address. An idle or
 * retired LC that no switch gave the service holds none.
 */
function serviceAddressOf(db: Db, lc: LcRecord): string | undefined {
  const held = lc.nics.flatMap((n) => n.addresses);
  const switchedIn = new SwitchJournal(db)
    .list(50)
    .find(
      (r) =>
        r.state === 'switched' &&
        r.plan.to.lc === lc.name &&
        held.some((a) => a.split('/')[0] === r.plan.service.address.split('/')[0]),
    );
  if (switchedIn) return switchedIn.plan.service.address;
  return lc.role === 'active' ? held[0] : undefined;
}

export function bindLcSwitch(
  db: Db,
  host: HostContext,
  request: LcSwitchRequest,
): {
  plan: SwitchPlanInput;
  binding: SwitchBinding;
  after: () => Promise<void>;
  /** Stateful: the whole-tree check of the data disks once the switch is done (see verifyDataDisks). */
  verify?: () => Promise<TreeCheckResult[]>;
} {
  const from = getLc(db, request.from);
  const to = getLc(db, request.to);
  const serviceAddress = serviceAddressOf(db, from);
  if (!serviceAddress) {
    const holder = listLcs(db)
      .filter((lc) => lc.name !== from.name)
      .map((lc) => ({ lc: lc.name, address: serviceAddressOf(db, lc) }))
      .find((h) => h.address !== undefined);
    throw new UnderstudyError(
      'SWITCH_ADDRESS_NOT_HELD',
      holder
        ? `${from.name} does not hold the service address ${holder.address} (${holder.lc} holds it)`
        : `${from.name} does not hold a service address: it is ${from.role}, and no switch moved one to it`,
      {
        hint: holder
          ? `Switch from the LC that serves: understudy switch ${holder.lc} ${holder.lc === to.name ? from.name : to.name} --method ${request.method}.`
          : `Mark the LC that serves as active (understudy lc role ${from.name} active) if it does serve.`,
        details: { lc: from.name, ...(holder ? { holder: holder.lc, address: holder.address } : {}) },
      },
    );
  }
  // LC1's address after the switch when it holds no other (every method: move-nic gives LC1 a NIC back).
  const newAddress = request.fromAddress ?? freeAddress(db, host.network, from.name);
  const service = switchedService(db, from.name, to.name);
  const plan = planSwitch(db, {
    from: from.name,
    to: to.name,
    service: serviceAddress,
    port: service.ports[0] ?? 80,
    healthPath: service.health.kind === 'http' ? service.health.path : '/',
    health: switchHealthOf(service),
    method: request.method,
    stateful: request.stateful,
    newAddress,
    drainTimeoutMs: request.drainTimeoutMs,
  });
  return {
    plan,
    binding: bindSwitch(db, host, { from: from.name, to: to.name, stateful: request.stateful, service }),
    ...(request.stateful
      ? { verify: () => verifyDataDisks(host, getLc(db, from.name), getLc(db, to.name)) }
      : {}),
    after: async () => {
      // The NIC records follow the devices; the roles change only when the active LC handed over.
      if (from.role === 'active')
        await recordSwitch(db, host, { from: from.name, to: to.name, fromRole: 'retired' });
      else for (const lc of [from.name, to.name]) await syncNicRecords(db, host, lc);
    },
  };
}
