/**
 * LC lifecycle operations that touch both the resource table and the driver, shared by the CLI, the
 * API and the demo.
 */
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { listPools, type HostContext } from '../host/index.ts';
import {
  getLc,
  insertLc,
  deleteLc,
  listLcs,
  validateLcRequest,
  type LcRecord,
  type LcRequest,
} from '../inventory/index.ts';
import { findImage } from '../images/index.ts';
import { assertDriverUsable, type LcStatus } from '../drivers/index.ts';
import { driverNames } from './drivers.ts';

/** Validates the request, records the LC and creates it with its driver; leaves nothing on failure. */
export async function createLc(db: Db, host: HostContext, request: LcRequest): Promise<LcRecord> {
  const record = validateLcRequest({
    db,
    request,
    network: host.network,
    pools: listPools(db),
    imageExists: (image) => findImage(db, image) !== undefined,
  });
  if (!driverNames().includes(record.driver))
    throw new UnderstudyError('DRIVER_UNKNOWN', `There is no partitioning driver "${record.driver}"`, {
      hint: `Known drivers: ${driverNames().join(', ')}.`,
    });
  assertDriverUsable({ lc: record.name, driver: record.driver, action: 'create' });
  const lc = insertLc(db, record);
  try {
    await host.driver.create(lc);
  } catch (error) {
    deleteLc(db, lc.name);
    throw error;
  }
  return lc;
}

/** Stops (if needed) and destroys an LC, then removes it from the resource table. */
export async function destroyLc(
  db: Db,
  host: HostContext,
  name: string,
  options: { force?: boolean } = {},
): Promise<void> {
  const lc = getLc(db, name);
  const status = await host.driver.status(name);
  if (status.state !== 'stopped' && status.state !== 'crashed') {
    if (!options.force) {
      throw new UnderstudyError('LC_RUNNING', `The logical computer "${name}" is ${status.state}`, {
        hint: 'Stop it first, or pass --force.',
      });
    }
    await host.driver.stop(name);
  }
  await host.driver.destroy(lc);
  deleteLc(db, name);
}

export async function startLc(
  db: Db,
  host: HostContext,
  name: string,
  options: { wait?: boolean; timeoutMs?: number } = {},
): Promise<LcStatus> {
  const lc = getLc(db, name);
  await host.driver.start(lc);
  if (options.wait !== false) await host.driver.waitUntilUp(name, { timeoutMs: options.timeoutMs });
  return host.driver.status(name);
}

export interface LcView extends LcRecord {
  status: LcStatus;
}

export async function describeLcs(db: Db, host: HostContext | undefined): Promise<LcView[]> {
  return Promise.all(
    listLcs(db).map(async (lc) => ({
      ...lc,
      status: host
        ? await host.driver.status(lc.name)
        : { name: lc.name, state: 'stopped' as const, reboots: 0, consoleLog: '' },
    })),
  );
}
