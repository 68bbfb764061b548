/**
 * Binds `understudy switch <from> <to>` (the switch on its own, outside a patch run) to the resource
 * table and the driver: the service address is the one <from> holds, LC1's new address is free in the
 * subnet, the sides signal the service through its pid file, moved NICs are recorded.
 */
import { UnderstudyError } from '../core/index.ts';
import { getLc } from '../inventory/index.ts';
import type { HostContext } from '../host/index.ts';
import type { Db } from '../store/index.ts';
import {
  SwitchJournal,
  type SwitchBinding,
  type SwitchPlanInput,
  type SwitchRequest,
} from '../switch/index.ts';
import { bindSwitch, recordSwitch, syncNicRecords } from './switch-binding.ts';
import { freeAddress, planSwitch } from './switch-plan.ts';

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
  const newAddress =
    request.method === 'move-nic'
      ? undefined
      : (request.fromAddress ?? freeAddress(db, host.network, from.name));
  const plan = planSwitch(db, {
    from: from.name,
    to: to.name,
    service: serviceAddress,
    port: 80,
    healthPath: '/health',
    method: request.method,
    stateful: request.stateful,
    newAddress,
    drainTimeoutMs: request.drainTimeoutMs,
  });
  return {
    plan,
    binding: bindSwitch(db, host, { from: from.name, to: to.name, stateful: request.stateful }),
    after: async () => {
      // The NIC records follow the devices; the roles change only when the active LC handed over.
      if (from.role === 'active')
        await recordSwitch(db, host, { from: from.name, to: to.name, fromRole: 'retired' });
      else for (const lc of [from.name, to.name]) await syncNicRecords(db, host, lc);
    },
  };
}
