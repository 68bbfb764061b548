/** Binds `understudy switch <from> <to>` to the resource table and the driver (see run/bind-switch.ts). */
import { bindLcSwitch } from '../../run/index.ts';
import type { SwitchBinder } from './switch.ts';

export const lcSwitchBinder: SwitchBinder = async (request, app) =>
  bindLcSwitch(app.db, await app.host(), request);
