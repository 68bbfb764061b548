/**
 * Reading and writing LC rows of the resource table. The table holds what an LC *is* (its resources
 * and role); whether it runs is observed from the driver, never stored as truth.
 */
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { LcSpec, DiskSpec, NicSpec } from '../drivers/index.ts';
import { servicesOf, setServices, type ServiceDefinition } from './service.ts';

/**
 * What an LC is for:
 * - `active`: it serves (or is meant to serve) the service; never offered as a standby.
 * - `standby`: idle and reserved as a stand-in; offered by the standby search.
 * - `idle`: defined but with no assigned duty; also offered by the standby search.
 * - `retired`: the former active LC after a switch, kept as the rollback target; not offered.
 */
export type LcRole = 'active' | 'standby' | 'idle' | 'retired';
export const lcRoles: readonly LcRole[] = ['active', 'standby', 'idle', 'retired'];

export interface LcRecord extends LcSpec {
  driver: string;
  role: LcRole;
  createdAt: string;
  /** The services the LC declares (see service.ts); the first one is what a patch run moves. */
  services: ServiceDefinition[];
}

interface LcRow {
  name: string;
  driver: string;
  image: string;
  cpus: string;
  cpu_share: number;
  memory_mb: number;
  role: LcRole;
  created_at: string;
}

function loadDisks(db: Db, lc: string): DiskSpec[] {
  return (
    db
      .prepare('SELECT name, pool, size_mb, mount_path FROM lc_disks WHERE lc = ? ORDER BY position')
      .all(lc) as {
      name: string;
      pool: string;
      size_mb: number;
      mount_path: string;
    }[]
  ).map((d) => ({ name: d.name, pool: d.pool, sizeMb: d.size_mb, mountPath: d.mount_path }));
}

function loadNics(db: Db, lc: string): NicSpec[] {
  return (
    db.prepare('SELECT name, bridge, mac, addresses FROM lc_nics WHERE lc = ? ORDER BY position').all(lc) as {
      name: string;
      bridge: string;
      mac: string;
      addresses: string;
    }[]
  ).map((n) => ({
    name: n.name,
    bridge: n.bridge,
    mac: n.mac,
    addresses: JSON.parse(n.addresses) as string[],
  }));
}

function rowToRecord(db: Db, row: LcRow): LcRecord {
  return {
    name: row.name,
    driver: row.driver,
    image: row.image,
    cpus: row.cpus,
    cpuSharePercent: row.cpu_share,
    memoryMb: row.memory_mb,
    role: row.role,
    createdAt: row.created_at,
    disks: loadDisks(db, row.name),
    nics: loadNics(db, row.name),
    services: servicesOf(db, row.name),
  };
}

export function findLc(db: Db, name: string): LcRecord | undefined {
  const row = db.prepare('SELECT * FROM lcs WHERE name = ?').get(name) as LcRow | undefined;
  return row && rowToRecord(db, row);
}

export function getLc(db: Db, name: string): LcRecord {
  const lc = findLc(db, name);
  if (!lc) throw new UnderstudyError('LC_NOT_FOUND', `There is no logical computer named "${name}"`);
  return lc;
}

export function listLcs(db: Db): LcRecord[] {
  return (db.prepare('SELECT * FROM lcs ORDER BY created_at, name').all() as LcRow[]).map((r) =>
    rowToRecord(db, r),
  );
}

export function insertLc(
  db: Db,
  record: Omit<LcRecord, 'createdAt' | 'services'> & { services?: ServiceDefinition[] },
): LcRecord {
  const createdAt = new Date().toISOString();
  db.transaction(() => {
    db.prepare(
      'INSERT INTO lcs (name, driver, image, cpus, cpu_share, memory_mb, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(
      record.name,
      record.driver,
      record.image,
      record.cpus,
      record.cpuSharePercent,
      record.memoryMb,
      record.role,
      createdAt,
    );
    record.disks.forEach((d, i) =>
      db
        .prepare(
          'INSERT INTO lc_disks (lc, name, pool, size_mb, mount_path, position) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(record.name, d.name, d.pool, d.sizeMb, d.mountPath, i),
    );
    record.nics.forEach((n, i) =>
      db
        .prepare('INSERT INTO lc_nics (lc, name, bridge, mac, addresses, position) VALUES (?, ?, ?, ?, ?, ?)')
        .run(record.name, n.name, n.bridge, n.mac, JSON.stringify(n.addresses), i),
    );
    setServices(db, record.name, record.services ?? []);
  })();
  return { ...record, services: record.services ?? [], createdAt };
}

export function deleteLc(db: Db, name: string): void {
  db.prepare('DELETE FROM lcs WHERE name = ?').run(name);
}

export function setRole(db: Db, name: string, role: LcRole): void {
  const changed = db.prepare('UPDATE lcs SET role = ? WHERE name = ?').run(role, name).changes;
  if (changed === 0)
    throw new UnderstudyError('LC_NOT_FOUND', `There is no logical computer named "${name}"`);
}

/** Moves a NIC row from one LC to another (the record follows the device when the switch moves it). */
export function moveNicRecord(db: Db, from: string, nic: string, to: string, newName = nic): void {
  const changed = db
    .prepare(
      'UPDATE lc_nics SET lc = ?, name = ?, position = (SELECT COUNT(*) FROM lc_nics WHERE lc = ?) WHERE lc = ? AND name = ?',
    )
    .run(to, newName, to, from, nic).changes;
  if (changed === 0)
    throw new UnderstudyError('NIC_NOT_FOUND', `The logical computer "${from}" has no NIC named "${nic}"`);
}

export function setNicAddresses(db: Db, lc: string, nic: string, addresses: string[]): void {
  db.prepare('UPDATE lc_nics SET addresses = ? WHERE lc = ? AND name = ?').run(
    JSON.stringify(addresses),
    lc,
    nic,
  );
}

export function addNicRecord(db: Db, lc: string, nic: NicSpec): void {
  db.prepare(
    'INSERT INTO lc_nics (lc, name, bridge, mac, addresses, position) VALUES (?, ?, ?, ?, ?, (SELECT COUNT(*) FROM lc_nics WHERE lc = ?))',
  ).run(lc, nic.name, nic.bridge, nic.mac, JSON.stringify(nic.addresses), lc);
}

export function deleteNicRecord(db: Db, lc: string, nic: string): void {
  db.prepare('DELETE FROM lc_nics WHERE lc = ? AND name = ?').run(lc, nic);
}
