/**
 * What agents report becomes the fleet's view: each LC with its group and labels (targets of
 * rollouts), and each pending patch with the time the fleet first saw it (for approval by age).
 */
import type pg from 'pg';

/** Folds the latest inventory reports into fleet.lcs and fleet.patches; returns LCs known. */
export async function syncInventory(db: pg.Pool, now: Date = new Date()): Promise<number> {
  await db.query(
    `INSERT INTO fleet.lcs (host_id, lc, group_name, labels)
     SELECT i.host_id, i.lc, COALESCE(i.body->>'group', 'default'), COALESCE(i.body->'labels', '{}')
     FROM fleet.inventory i JOIN fleet.hosts h ON h.id = i.host_id AND h.revoked_at IS NULL
     ON CONFLICT (host_id, lc) DO UPDATE SET group_name = EXCLUDED.group_name, labels = EXCLUDED.labels`,
  );
  await db.query(
    `INSERT INTO fleet.patches (name, security, first_seen)
     SELECT p->>'name', bool_or((p->>'security')::boolean), $1
     FROM fleet.inventory i, jsonb_array_elements(i.body->'pending') p
     GROUP BY p->>'name'
     ON CONFLICT (name) DO UPDATE SET security = fleet.patches.security OR EXCLUDED.security`,
    [now],
  );
  const n = await db.query<{ n: string }>('SELECT count(*) AS n FROM fleet.lcs');
  return Number(n.rows[0]?.n ?? 0);
}
