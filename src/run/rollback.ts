/**
 * Rollback (`understudy rollback <run>`): the service moves back to LC1 at any time after the switch,
 * and the data written on LC2 since comes with it: catch-up syncs of LC2's disks onto LC1's while LC2
 * serves, then the final sync inside the switch, after LC2's last write.
 */
import { UnderstudyError } from '../core/index.ts';
import { addNicRecord, deleteNicRecord, getLc } from '../inventory/index.ts';
import { defineStep, moveService, type Step } from './steps.ts';
import { lc1, saveFacts, standby, type RunContext } from './context.ts';
import { catchUpDisks, syncNicRecords } from './switch-binding.ts';
import { freeAddress } from './switch-plan.ts';
import { invertDiskMap } from './disk-map.ts';

/** LC1 runs and has a NIC on the bridge (after move-nic it has none: it gets a temporary one). */
const prepareLc1 = defineStep('rollback-prepare', {
  name: 'rollback-prepare',
  async run(c) {
    const back = lc1(c);
    const state = (await c.host.driver.status(back.name)).state;
    if (state === 'stopped' || state === 'crashed') {
      await c.host.driver.start(back);
      await c.host.driver.waitUntilUp(back.name, { timeoutMs: c.options.bootTimeoutMs });
    }
    if (back.nics.length === 0) {
      const template = standby(c).nics[0];
      if (!template)
        throw new UnderstudyError(
          'RUN_PRECONDITION',
          `Neither ${back.name} nor ${standby(c).name} has a NIC to plan the rollback with`,
        );
      const mac = `02:75:74:${[0, 0, 0]
        .map(() =>
          Math.floor(Math.random() * 256)
            .toString(16)
            .padStart(2, '0'),
        )
        .join(':')}`;
      const nic = {
        name: 'eth0',
        bridge: template.bridge,
        mac,
        addresses: [freeAddress(c.db, c.host.network, c.options.lc)],
      };
      await c.host.driver.addNic(back, nic);
      addNicRecord(c.db, back.name, nic);
      c.facts.tempNic = mac;
      saveFacts(c);
    }
    return { lc: back.name };
  },
});

/** Catch-up of what LC2 wrote since the switch, while LC2 keeps serving (every disk, by role). */
const presync = defineStep('rollback-presync', {
  name: 'rollback-presync',
  async run(c) {
    if (!c.options.stateful) return { skipped: true };
    const caught = await catchUpDisks(c.host, standby(c), lc1(c), {
      logger: c.logger,
      diskMap: invertDiskMap(c.facts.diskMap),
    });
    return {
      durationMs: Math.round(caught.durationMs),
      passes: caught.disks.length,
      files: caught.files,
      outpaced: caught.outpaced,
    };
  },
});

const switchBack = defineStep('rollback-switch', {
  name: 'rollback-switch',
  async run(c) {
    if (c.facts.rollbackResult) return c.facts.rollbackResult; // finished before a crash of the manager
    const newAddress = (c.facts.rollbackNewAddress ??= freeAddress(c.db, c.host.network, c.options.lc));
    const since = (c.facts.rollbackStartedAt ??= new Date().toISOString());
    saveFacts(c);
    const result = await moveService(c, {
      step: 'rollback-switch',
      from: standby(c).name,
      to: lc1(c).name,
      newAddress,
      since,
      fromRole: 'idle',
    });
    c.facts.rollbackSwitchId = result.id;
    c.facts.rollbackResult = result;
    saveFacts(c);
    return result;
  },
});

/** Drops an address from whichever NIC of the LC holds it (idempotent). */
async function dropAddress(c: RunContext, lc: string, address: string | undefined): Promise<void> {
  if (!address) return;
  for (const nic of getLc(c.db, lc).nics) {
    if (nic.addresses.includes(address) && nic.addresses.length > 1) {
      await c.host.driver.netExec(lc, ['ip', 'addr', 'del', address, 'dev', nic.name], { okCodes: [0, 2] });
    }
  }
  await syncNicRecords(c.db, c.host, lc);
}

/** Removes what only the switches needed: LC1's temporary NIC or address, LC2's temporary address. */
const finish = defineStep('rollback-finish', {
  name: 'rollback-finish',
  async run(c) {
    await dropAddress(c, lc1(c).name, c.facts.lc1NewAddress);
    await dropAddress(c, standby(c).name, c.facts.rollbackNewAddress);
    const back = lc1(c);
    const temp = back.nics.find((n) => n.mac === c.facts.tempNic);
    if (temp && back.nics.length > 1) {
      await c.host.driver.removeNic(back, temp.name);
      deleteNicRecord(c.db, back.name, temp.name);
    }
    for (const r of c.facts.patchResults ?? [])
      c.catalogue.recordRolledBack(r.name, back.name, `rolled back by run ${c.runId}`);
    return { lc: back.name, nics: getLc(c.db, back.name).nics.map((n) => n.name) };
  },
});

export const rollbackSteps: readonly Step[] = [prepareLc1, presync, switchBack, finish];
