/**
 * Binds `understudy switch <from> <to>` (the switch on its own, outside a patch run) to the resource
 * table and the driver: the service address is the one <from> holds, LC1's new address is free in the
 * subnet, the sides signal the service through its pid file, moved NICs are recorded.
 */
import { UnderstudyError } from '../core/index.ts';
import { getLc, setRole } from '../inventory/index.ts';
import type { HostContext } from '../host/index.ts';
import type { Db } from '../store/index.ts';
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

export function bindLcSwitch(
  db: Db,
  host: HostContext,
  request: LcSwitchRequest,
): { plan: SwitchPlanInput; binding: SwitchBinding; after: () => Promise<void> } {
  const from = getLc(db, request.from);
  const to = getLc(db, request.to);
  // The service address: the one an earlier switch moved to <from>, if any (an LC that took over the
  // service holds its own address too), else <from>'s first address.
  const held = from.nics.flatMap((n) => n.addresses);
  const earlier = new SwitchJournal(db)
    .list(50)
    .find(
      (r) =>
        r.state === 'switched' &&
        r.plan.to.lc === from.name &&
        held.some((a) => a.split('/')[0] === r.plan.service.address.split('/')[0]),
    );
  const serviceAddress = earlier?.plan.service.address ?? held[0];
  if (!serviceAddress)
    throw new UnderstudyError('SWITCH_PLAN_INVALID', `"${from.name}" has no NIC with an address to move`);
  const options = resolveRunOptions(
    { lc: from.name, patches: ['-'], method: request.method, stateful: request.stateful },
    { getPatch: () => undefined } as never,
  );
  const c: SwitchContext = { db, host, options, facts: { serviceAddress } };
  const newAddress = request.method === 'move-nic' ? undefined : (request.fromAddress ?? freeAddress(c));
  const plan = { ...planSwitch(c, from.name, to.name, newAddress), drainTimeoutMs: request.drainTimeoutMs };
  return {
    plan,
    binding: {
      from: switchSide(c, from.name),
      to: switchSide(c, to.name),
      moveNic: moveNicBinding(c),
      finalSync: request.stateful
        ? async () => void (await syncAppDisk(c, getLc(db, from.name), getLc(db, to.name)))
        : undefined,
    },
    after: async () => {
      await syncNicRecords(c, from.name);
      await syncNicRecords(c, to.name);
      if (from.role === 'active') {
        setRole(db, to.name, 'active');
        setRole(db, from.name, 'retired');
      }
    },
  };
}
