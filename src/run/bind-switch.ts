/**
 * Binds `understudy switch <from> <to>` (the switch on its own, outside a patch run) to the resource
 * table and the driver: the service address is the one <from> holds, LC1's new address is free in the
 * subnet, the sides signal the service through its pid file, moved NICs are recorded.
 */
import { UnderstudyError } from '../core/index.ts';
import { getLc, listLcs, setRole, type LcRecord } from '../inventory/index.ts';
import type { HostContext, Manager } from '../manager/index.ts';
import {
  SwitchJournal,
  type SwitchBinding,
  type SwitchPlanInput,
  type SwitchRequest,
} from '../switch/index.ts';
import { moveNicBinding, switchSide, syncAppDisk, syncNicRecords, type SwitchContext } from './context.ts';
import { resolveRunOptions } from './orchestrator.ts';
import { freeAddress, planSwitch } from './steps.ts';

export type LcSwitchRequest = SwitchRequest;

/**
 * The service address an LC holds: the one the last switch to it moved there (an LC that took over
 * the service holds its own address too), or, for the active LC, its first address. An idle or
 * retired LC that no switch gave the service holds none.
 */
function serviceAddressOf(manager: Manager, lc: LcRecord): string | undefined {
  const held = lc.nics.flatMap((n) => n.addresses);
  const switchedIn = new SwitchJournal(manager.db)
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
  manager: Manager,
  host: HostContext,
  request: LcSwitchRequest,
): { plan: SwitchPlanInput; binding: SwitchBinding; after: () => Promise<void> } {
  const from = getLc(manager.db, request.from);
  const to = getLc(manager.db, request.to);
  const serviceAddress = serviceAddressOf(manager, from);
  if (!serviceAddress) {
    const holder = listLcs(manager.db)
      .filter((lc) => lc.name !== from.name)
      .map((lc) => ({ lc: lc.name, address: serviceAddressOf(manager, lc) }))
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
  const options = resolveRunOptions(
    { lc: from.name, patches: ['-'], method: request.method, stateful: request.stateful },
    { getPatch: () => undefined } as never,
  );
  const c: SwitchContext = { manager, host, options, facts: { serviceAddress } };
  const newAddress = request.fromAddress ?? freeAddress(c);
  const plan = { ...planSwitch(c, from.name, to.name, newAddress), drainTimeoutMs: request.drainTimeoutMs };
  return {
    plan,
    binding: {
      from: switchSide(c, from.name),
      to: switchSide(c, to.name),
      moveNic: moveNicBinding(c),
      finalSync: request.stateful
        ? async () => void (await syncAppDisk(c, getLc(manager.db, from.name), getLc(manager.db, to.name)))
        : undefined,
    },
    after: async () => {
      await syncNicRecords(c, from.name);
      await syncNicRecords(c, to.name);
      if (from.role === 'active') {
        setRole(manager.db, to.name, 'active');
        setRole(manager.db, from.name, 'retired');
      }
    },
  };
}
