/** Binds `understudy switch <from> <to>` to the resource table and the driver (see run/bind-switch.ts). */
import path from 'node:path';
import { hostContext, openManager } from '../../manager/index.ts';
import { bindLcSwitch } from '../../run/index.ts';
import type { SwitchBinder } from './switch.ts';

export const lcSwitchBinder: SwitchBinder = async (request, db) => {
  // The switch journal lives in the same store; the manager opens it with every schema.
  const manager = openManager(path.dirname(db.name));
  const host = await hostContext(manager);
  const { plan, binding, after } = bindLcSwitch(manager, host, request);
  return {
    plan,
    binding,
    after: async () => {
      await after();
      manager.close();
    },
  };
};
