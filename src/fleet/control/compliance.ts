/**
 * Compliance of the fleet, from what agents reported and what rollouts did: per LC the pending
 * security updates with their age, the last run and its result, and the time since the last
 * successful patch; per group the same folded up. Exported as JSON or CSV.
 */
import type pg from 'pg';

export interface LcCompliance {
  host: string;
  lc: string;
  group: string;
  pendingSecurity: { name: string; ageDays: number }[];
  lastRunAt: string | null;
  lastRunResult: string | null;
  daysSinceLastPatch: number | null;
  /** The last health report of the LC's service after a patch switched it (agents send them during the watch). */
  lastHealth: { healthy: boolean; at: string } | null;
}

export interface GroupCompliance {
  group: string;
  lcs: number;
  lcsWithPendingSecurity: number;
  oldestPendingSecurityDays: number | null;
  lcsLastRunFailed: number;
  maxDaysSinceLastPatch: number | null;
  /** LCs whose last health report says unhealthy. */
  lcsUnhealthy: number;
}

const dayMs = 24 * 3600 * 1000;
const days = (from: Date | null, now: Date): number | null =>
  from ? Math.floor(((now.getTime() - from.getTime()) / dayMs) * 10) / 10 : null;

export async function lcCompliance(db: pg.Pool, now: Date = new Date()): Promise<LcCompliance[]> {
  const rows = await db.query<{
    host_id: string;
    lc: string;
    group_name: string;
    pending: { name: string; first_seen: Date }[] | null;
    last_run_at: Date | null;
    last_run_state: string | null;
    last_patch_at: Date | null;
    last_healthy: boolean | null;
    last_health_at: Date | null;
  }>(
    `SELECT l.host_id, l.lc, l.group_name,
       (SELECT json_agg(json_build_object('name', p.name, 'first_seen', p.first_seen) ORDER BY p.first_seen)
          FROM fleet.inventory i, jsonb_array_elements(i.body->'pending') e JOIN fleet.patches p ON p.name = e->>'name'
          WHERE i.host_id = l.host_id AND i.lc = l.lc AND p.security) AS pending,
       lw.finished_at AS last_run_at, lw.state AS last_run_state,
       (SELECT max(finished_at) FROM fleet.work w WHERE w.host_id = l.host_id AND w.lc = l.lc
          AND w.kind = 'patch' AND w.state = 'succeeded') AS last_patch_at,
       lh.healthy AS last_healthy, lh.at AS last_health_at
     FROM fleet.lcs l
     LEFT JOIN LATERAL (SELECT (r.body->>'healthy')::boolean AS healthy, r.at FROM fleet.reports r
        WHERE r.host_id = l.host_id AND r.kind = 'health' AND r.body->>'lc' = l.lc
        ORDER BY r.at DESC LIMIT 1) lh ON true
     LEFT JOIN LATERAL (SELECT finished_at, state FROM fleet.work w
        WHERE w.host_id = l.host_id AND w.lc = l.lc AND w.finished_at IS NOT NULL
        ORDER BY finished_at DESC LIMIT 1) lw ON true
     ORDER BY l.group_name, l.host_id, l.lc`,
  );
  return rows.rows.map((r) => ({
    host: r.host_id,
    lc: r.lc,
    group: r.group_name,
    pendingSecurity: (r.pending ?? []).map((p) => ({
      name: p.name,
      ageDays: days(new Date(p.first_seen), now) ?? 0,
    })),
    lastRunAt: r.last_run_at ? r.last_run_at.toISOString() : null,
    lastRunResult: r.last_run_state,
    daysSinceLastPatch: days(r.last_patch_at, now),
    lastHealth:
      r.last_health_at && r.last_healthy !== null
        ? { healthy: r.last_healthy, at: r.last_health_at.toISOString() }
        : null,
  }));
}

export function groupCompliance(lcs: readonly LcCompliance[]): GroupCompliance[] {
  const groups = new Map<string, LcCompliance[]>();
  for (const lc of lcs) groups.set(lc.group, [...(groups.get(lc.group) ?? []), lc]);
  return [...groups.entries()].map(([group, members]) => {
    const ages = members.flatMap((m) => m.pendingSecurity.map((p) => p.ageDays));
    const since = members.map((m) => m.daysSinceLastPatch).filter((d): d is number => d !== null);
    return {
      group,
      lcs: members.length,
      lcsWithPendingSecurity: members.filter((m) => m.pendingSecurity.length > 0).length,
      oldestPendingSecurityDays: ages.length > 0 ? Math.max(...ages) : null,
      lcsLastRunFailed: members.filter((m) => m.lastRunResult === 'failed' || m.lastRunResult === 'reverted')
        .length,
      maxDaysSinceLastPatch: since.length > 0 ? Math.max(...since) : null,
      lcsUnhealthy: members.filter((m) => m.lastHealth?.healthy === false).length,
    };
  });
}

const csvCell = (v: unknown): string => {
  const s = v === null || v === undefined ? '' : String(v);
  // Quote always-needed characters, and neutralise spreadsheet formulas.
  const safe = /^[=+\-@]/.test(s) ? `'${s}` : s;
  return /[",\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

export function complianceCsv(lcs: readonly LcCompliance[]): string {
  const header = [
    'host',
    'lc',
    'group',
    'pending_security',
    'oldest_pending_days',
    'last_run_at',
    'last_run_result',
    'days_since_last_patch',
    'last_health',
    'last_health_at',
  ];
  const lines = lcs.map((l) =>
    [
      l.host,
      l.lc,
      l.group,
      l.pendingSecurity.map((p) => p.name).join(' '),
      l.pendingSecurity.length > 0 ? Math.max(...l.pendingSecurity.map((p) => p.ageDays)) : '',
      l.lastRunAt,
      l.lastRunResult,
      l.daysSinceLastPatch,
      l.lastHealth ? (l.lastHealth.healthy ? 'healthy' : 'unhealthy') : '',
      l.lastHealth?.at,
    ]
      .map(csvCell)
      .join(','),
  );
  return `${[header.join(','), ...lines].join('\n')}\n`;
}

export function groupComplianceCsv(groups: readonly GroupCompliance[]): string {
  const header = [
    'group',
    'lcs',
    'lcs_with_pending_security',
    'oldest_pending_security_days',
    'lcs_last_run_failed',
    'max_days_since_last_patch',
    'lcs_unhealthy',
  ];
  const lines = groups.map((g) =>
    [
      g.group,
      g.lcs,
      g.lcsWithPendingSecurity,
      g.oldestPendingSecurityDays,
      g.lcsLastRunFailed,
      g.maxDaysSinceLastPatch,
      g.lcsUnhealthy,
    ]
      .map(csvCell)
      .join(','),
  );
  return `${[header.join(','), ...lines].join('\n')}\n`;
}
