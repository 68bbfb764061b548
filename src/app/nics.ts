/** An LC's NICs on the bridge, added or removed (running or not): `lc nic add|remove`, `/v1/lcs/{name}/nics`. */
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { HostContext } from '../host/index.ts';
import type { NicSpec } from '../drivers/index.ts';
import { addNicRecord, deleteNicRecord, getLc, validateNic } from '../inventory/index.ts';

export interface AddNicOptions {
  lc: string;
  /** CIDR addresses; [] = none. */
  addresses: string[];
  mac?: string;
  /** Name inside the LC; default the lowest free ethN. */
  name?: string;
}

/** Plugs a new NIC into the LC and records it (it stays across reboots). NIC_EXISTS, INVALID_ARGUMENT. */
export async function addLcNic(db: Db, host: HostContext, options: AddNicOptions): Promise<NicSpec> {
  const record = getLc(db, options.lc);
  const taken = new Set(record.nics.map((n) => n.name));
  let nicName = options.name;
  for (let i = 0; nicName === undefined; i++) if (!taken.has(`eth${i}`)) nicName = `eth${i}`;
  if (!/^[a-z][a-z0-9]{0,14}$/.test(nicName))
    throw new UnderstudyError('INVALID_ARGUMENT', `--name: "${nicName}" is not a NIC name (e.g. eth1)`);
  if (taken.has(nicName))
    throw new UnderstudyError(
      'NIC_EXISTS',
      `The logical computer "${options.lc}" already has a NIC named "${nicName}"`,
    );
  const spec = validateNic({
    db,
    network: host.network,
    lc: options.lc,
    name: nicName,
    addresses: options.addresses,
    mac: options.mac,
  });
  await host.driver.addNic(record, spec);
  addNicRecord(db, options.lc, spec);
  return spec;
}

/** Unplugs a NIC; NIC_NOT_FOUND, NIC_IN_USE for an address of the active LC. */
export async function removeLcNic(db: Db, host: HostContext, lc: string, nicName: string): Promise<void> {
  const record = getLc(db, lc);
  const target = record.nics.find((n) => n.name === nicName);
  if (!target)
    throw new UnderstudyError('NIC_NOT_FOUND', `The logical computer "${lc}" has no NIC named "${nicName}"`);
  if (record.role === 'active' && target.addresses.length > 0)
    throw new UnderstudyError(
      'NIC_IN_USE',
      `${nicName} of ${lc} carries ${target.addresses.join(', ')} and ${lc} is the active LC`,
    );
  await host.driver.removeNic(record, nicName);
  deleteNicRecord(db, lc, nicName);
}
