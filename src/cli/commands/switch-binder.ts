/**
 * Binds `understudy switch <from> <to>` to the resource table and the driver (see run/bind-switch.ts).
 * The command first recovers what a crashed manager left, then leases both LCs for the switch: a run
 * or another switch cannot take them meanwhile, and the recovery of another manager leaves this
 * switch alone while this process lives.
 */
import { UnderstudyError } from '../../core/index.ts';
import { bindLcSwitch, crashPoint } from '../../run/index.ts';
import { releaseLeases, takeLeases } from '../../store/index.ts';
import type { SwitchBinder } from './switch.ts';

export const lcSwitchBinder: SwitchBinder = async (request, app) => {
  const host = await app.start();
  const leases = [`lc:${request.from}`, `lc:${request.to}`];
  const held = takeLeases(app.db, leases, app.owner.id, `switch ${request.from} -> ${request.to}`);
  if (held)
    throw new UnderstudyError(
      'RUN_BUSY',
      `"${held.resource.slice(3)}" is in use by a live process (${held.purpose}, pid ${held.owner.split(':')[0] ?? '?'})`,
      { hint: 'Wait for it to finish; `understudy run list` and `understudy switches` show what runs.' },
    );
  const { plan, binding, after, verify } = bindLcSwitch(app.db, host, request);
  return {
    plan,
    ...(verify ? { verify } : {}),
    // UNDERSTUDY_CRASH_AT=switch/<step>:after kills the command there (the crash tests).
    binding: { ...binding, afterStep: (step) => crashPoint(`switch/${step}`, 'after') },
    after: async () => {
      await after();
      releaseLeases(app.db, leases, app.owner.id);
    },
  };
};
