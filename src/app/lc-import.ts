/**
 * Takes over an LXC container the operator already runs (`lc import`, `POST /v1/lcs/import`): its
 * root filesystem is copied (while it is stopped) into an image, with the owners shifted back when it
 * is unprivileged; the LC is created on the LXC driver with the container's MAC, addresses and memory.
 */
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { getPool, type HostContext } from '../host/index.ts';
import { inspectExistingContainer } from '../drivers/index.ts';
import { importImage } from '../images/index.ts';
import type { LcRecord } from '../inventory/index.ts';
import { createLc } from './lcs.ts';

export interface ImportLxcOptions {
  container: string;
  /** LXC path the container lives in, e.g. /var/lib/lxc. */
  lxcPath: string;
  /** Name of the LC (default: the container name). */
  name?: string;
  pool: string;
  progress?: (line: string) => void;
}

export interface ImportedLc {
  record: LcRecord;
  image: string;
  importedFrom: string;
  /** The host uid the container's owners were shifted down by, when it was unprivileged. */
  uidBase: number | null;
  nic: { name: string; mac: string; addresses: string[]; bridge: string } | null;
}

export async function importLxcContainer(
  db: Db,
  host: HostContext,
  options: ImportLxcOptions,
): Promise<ImportedLc> {
  const { container } = options;
  const existing = await inspectExistingContainer({ lxcPath: options.lxcPath, name: container });
  if (existing.nics.length > 1)
    throw new UnderstudyError(
      'LXC_IMPORT_UNSUPPORTED',
      `The LXC container "${container}" has ${existing.nics.length} NICs; an imported LC takes one`,
      { hint: 'Remove the other NICs from its config, import it, then add them with the LC.' },
    );
  const name = options.name ?? container;
  const nic = existing.nics[0];
  const image = await importImage({
    db,
    source: existing.rootfs,
    name: `${name}-imported`,
    pool: getPool(db, options.pool),
    shiftIds: existing.idmap,
    origin: { lxcContainer: existing.configFile },
    progress: options.progress ?? (() => undefined),
  });
  const record = await createLc(db, host, {
    name,
    image: image.name,
    driver: 'lxc',
    pool: options.pool,
    cpus: existing.cpus,
    memoryMb: existing.memoryMb,
    appDiskMb: 0,
    addresses: nic?.addresses ?? [],
    mac: nic?.mac,
  });
  return {
    record,
    image: image.name,
    importedFrom: existing.configFile,
    uidBase: existing.idmap ? existing.idmap.uidBase : null,
    nic: nic ? { name: nic.name, mac: nic.mac, addresses: nic.addresses, bridge: nic.bridge } : null,
  };
}
