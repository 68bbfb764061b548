/**
 * Leases: which owner (see core's Owner) holds a resource — an LC claimed by a run or a switch, a
 * disk-copy job, the recovery itself. A lease is valid while its owner is alive; taking a resource
 * whose lease is held by a live owner fails, taking one whose owner died succeeds. Every check and
 * take happens in one immediate transaction, so two managers never both get a resource.
 */
import { isOwnerAlive } from '../core/index.ts';
import type { Db, ModuleSchema } from './types.ts';

export const leasesSchema: ModuleSchema = {
  module: 'leases',
  migrations: [
    {
      version: 1,
      description: 'leases on LCs, jobs and the recovery, held by a live owner',
      up: `CREATE TABLE leases (
        resource TEXT PRIMARY KEY,    -- e.g. lc:lc1, copy:<job id>, recovery
        owner TEXT NOT NULL,          -- <pid>:<start time>:<nonce>
        purpose TEXT NOT NULL,        -- what holds it, e.g. run r251203-abc123
        taken_at TEXT NOT NULL
      )`,
    },
  ],
};

export interface Lease {
  resource: string;
  owner: string;
  purpose: string;
  takenAt: string;
}

/** The lease on `resource` when its owner is alive. */
export function liveLease(db: Db, resource: string): Lease | undefined {
  const row = db.prepare('SELECT * FROM leases WHERE resource = ?').get(resource) as
    { resource: string; owner: string; purpose: string; taken_at: string } | undefined;
  if (!row || !isOwnerAlive(row.owner)) return undefined;
  return { resource: row.resource, owner: row.owner, purpose: row.purpose, takenAt: row.taken_at };
}

/**
 * Takes every resource for `owner`, all or none: resolves with the live lease of another owner that
 * blocks it, or undefined when `owner` now holds them all. Call it inside `db.transaction().immediate()`
 * together with any other check that must be atomic with the take, or alone.
 */
export function takeLeases(
  db: Db,
  resources: readonly string[],
  owner: string,
  purpose: string,
): Lease | undefined {
  const take = db.transaction(() => {
    for (const resource of resources) {
      const held = liveLease(db, resource);
      if (held && held.owner !== owner) return held;
    }
    const now = new Date().toISOString();
    for (const resource of resources)
      db.prepare(
        'INSERT INTO leases (resource, owner, purpose, taken_at) VALUES (?, ?, ?, ?) ON CONFLICT(resource) DO UPDATE SET owner = excluded.owner, purpose = excluded.purpose, taken_at = excluded.taken_at',
      ).run(resource, owner, purpose, now);
    return undefined;
  });
  return db.inTransaction ? take() : take.immediate();
}

/** Gives up the leases `owner` holds on these resources (others' leases are left alone). */
export function releaseLeases(db: Db, resources: readonly string[], owner: string): void {
  for (const resource of resources)
    db.prepare('DELETE FROM leases WHERE resource = ? AND owner = ?').run(resource, owner);
}
