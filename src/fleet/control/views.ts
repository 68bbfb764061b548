/**
 * What the API and the dashboard show of the fleet, read from the control plane's database:
 * rollouts with their state and work counts, one rollout's waves with each target's work, and the
 * enrolled hosts with their heartbeat. Read-only.
 */
import type pg from 'pg';
import { targetKey, type FleetTarget, type RolloutState, type WorkState } from '../rollout/index.ts';
import { getRollout, loadWork } from './rollouts.ts';
import {
  complianceCsv,
  groupCompliance,
  groupComplianceCsv,
  lcCompliance,
  type GroupCompliance,
  type LcCompliance,
} from './compliance.ts';

export interface RolloutSummary {
  id: number;
  name: string;
  state: RolloutState;
  reason: string | null;
  patchSet: string[];
  createdAt: string;
  updatedAt: string;
  waves: number;
  targets: number;
  /** Patch work by state. */
  work: Partial<Record<WorkState, number>>;
}

/**
 * A wave's state: pending (nothing dispatched), running (work not final yet), done (every target
 * succeeded), failed (some target failed or was reverted), cancelled (the rollout ended first).
 */
export type WaveState = 'pending' | 'running' | 'done' | 'failed' | 'cancelled';

export interface WaveTargetView {
  host: string;
  lc: string;
  group: string;
  /** The patch work's state; null when not dispatched. */
  state: WorkState | null;
  /** The automatic or operator rollback's state, if any. */
  rollback: WorkState | null;
  unhealthy: boolean;
  finishedAt: string | null;
}

export interface WaveView {
  index: number;
  name: string;
  state: WaveState;
  targets: WaveTargetView[];
}

/** One entry of a rollout's record: an operator's action or an approval, allowed or refused. */
export interface RolloutHistoryEntry {
  at: string;
  actor: string;
  /** rollout.create, rollout.pause, rollout.resume, rollout.stop, rollout.rollback-wave, rollout.rollback-lc, rollout.challenge, rollout.approve */
  action: string;
  outcome: 'allowed' | 'refused';
  detail: Record<string, unknown>;
}

export interface RolloutDetail extends RolloutSummary {
  spec: Record<string, unknown>;
  wavesDetail: WaveView[];
  history: RolloutHistoryEntry[];
}

export interface HostView {
  id: string;
  enrolledAt: string | null;
  revokedAt: string | null;
  lastSeen: string | null;
  lcs: number;
  /** Work not final yet (queued, claimed or running). */
  openWork: number;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** The newest rollouts first (or only rollout `id`). */
export async function listRolloutSummaries(
  db: pg.Pool | pg.PoolClient,
  options: { limit?: number; id?: number } = {},
): Promise<RolloutSummary[]> {
  const rows = await db.query<{
    id: string;
    name: string;
    state: RolloutState;
    reason: string | null;
    patch_set: string[];
    created_at: Date;
    updated_at: Date;
    waves: number;
    targets: number;
    work: Record<string, number> | null;
  }>(
    `SELECT r.id, r.name, r.state, r.reason, r.patch_set, r.created_at, r.updated_at,
       jsonb_array_length(r.waves) AS waves,
       (SELECT count(*)::int FROM jsonb_array_elements(r.waves) w, jsonb_array_elements(w) t) AS targets,
       (SELECT jsonb_object_agg(state, n) FROM (SELECT state, count(*)::int AS n FROM fleet.work
          WHERE rollout_id = r.id AND kind = 'patch' GROUP BY state) s) AS work
     FROM fleet.rollouts r WHERE ($2::bigint IS NULL OR r.id = $2) ORDER BY r.id DESC LIMIT $1`,
    [options.limit ?? 100, options.id ?? null],
  );
  return rows.rows.map((r) => ({
    id: Number(r.id),
    name: r.name,
    state: r.state,
    reason: r.reason,
    patchSet: r.patch_set,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    waves: r.waves,
    targets: r.targets,
    work: r.work ?? {},
  }));
}

function waveState(targets: readonly WaveTargetView[]): WaveState {
  const states = targets.map((t) => t.state);
  if (states.every((s) => s === null)) return 'pending';
  if (states.some((s) => s === 'failed' || s === 'reverted')) return 'failed';
  if (states.some((s) => s === null || s === 'queued' || s === 'claimed' || s === 'running'))
    return 'running';
  if (states.some((s) => s === 'cancelled')) return 'cancelled';
  return 'done';
}

/** A rollout's record, oldest first: what operators and administrators did to it (from the audit). */
export async function rolloutHistory(
  db: pg.Pool | pg.PoolClient,
  id: number,
): Promise<RolloutHistoryEntry[]> {
  const rows = await db.query<{
    at: Date;
    actor: string;
    action: string;
    outcome: 'allowed' | 'refused';
    detail: Record<string, unknown>;
  }>(
    `SELECT at, actor, action, outcome, detail FROM fleet.audit
     WHERE detail ? 'rolloutId' AND detail->>'rolloutId' = $1::text ORDER BY id`,
    [String(id)],
  );
  return rows.rows.map((r) => {
    const { rolloutId: _id, messageKey: _key, ...detail } = r.detail;
    return { at: r.at.toISOString(), actor: r.actor, action: r.action, outcome: r.outcome, detail };
  });
}

/** One rollout with its waves and its record; throws FLEET_NOT_FOUND for an unknown id. */
export async function rolloutDetail(pool: pg.Pool, id: number): Promise<RolloutDetail> {
  // One snapshot for every read: an agent's report moves a patch to reverted and its rollback to
  // succeeded in one transaction, and separate reads could show one without the other.
  const db = await pool.connect();
  try {
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const detail = await readRolloutDetail(db, id);
    await db.query('COMMIT');
    return detail;
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    db.release();
  }
}

async function readRolloutDetail(db: pg.PoolClient, id: number): Promise<RolloutDetail> {
  const rollout = await getRollout(db, id);
  const [summary] = await listRolloutSummaries(db, { id });
  const work = await loadWork(db, id);
  const rollbacks = await loadWork(db, id, 'rollback');
  const view = (t: FleetTarget): WaveTargetView => {
    const w = work.get(targetKey(t));
    return {
      host: t.host,
      lc: t.lc,
      group: t.group,
      state: w?.state ?? null,
      rollback: rollbacks.get(targetKey(t))?.state ?? null,
      unhealthy: w?.unhealthy === true,
      finishedAt: iso(w?.finishedAt ?? null),
    };
  };
  const wavesDetail = rollout.waves.map((targets, index) => {
    const views = targets.map(view);
    return {
      index,
      name: index === 0 ? 'canary' : `wave ${index + 1}`,
      state: waveState(views),
      targets: views,
    };
  });
  return {
    ...(summary as RolloutSummary),
    spec: rollout.spec as unknown as Record<string, unknown>,
    wavesDetail,
    history: await rolloutHistory(db, id),
  };
}

export async function listHostViews(db: pg.Pool): Promise<HostView[]> {
  const rows = await db.query<{
    id: string;
    enrolled_at: Date | null;
    revoked_at: Date | null;
    last_seen: Date | null;
    lcs: number;
    open_work: number;
  }>(
    `SELECT h.id, h.enrolled_at, h.revoked_at, h.last_seen,
       (SELECT count(*)::int FROM fleet.lcs l WHERE l.host_id = h.id) AS lcs,
       (SELECT count(*)::int FROM fleet.work w WHERE w.host_id = h.id
          AND w.state IN ('queued','claimed','running')) AS open_work
     FROM fleet.hosts h ORDER BY h.id`,
  );
  return rows.rows.map((r) => ({
    id: r.id,
    enrolledAt: iso(r.enrolled_at),
    revokedAt: iso(r.revoked_at),
    lastSeen: iso(r.last_seen),
    lcs: r.lcs,
    openWork: r.open_work,
  }));
}

/** The views over one pool (what the API's FleetReader asks for). */
export function fleetReader(db: pg.Pool): {
  rollouts(): Promise<RolloutSummary[]>;
  rollout(id: number): Promise<RolloutDetail>;
  hosts(): Promise<HostView[]>;
  compliance(): Promise<{ lcs: LcCompliance[]; groups: GroupCompliance[] }>;
  complianceCsv(by: 'lc' | 'group'): Promise<string>;
} {
  return {
    rollouts: () => listRolloutSummaries(db),
    rollout: (id) => rolloutDetail(db, id),
    hosts: () => listHostViews(db),
    async compliance() {
      const lcs = await lcCompliance(db);
      return { lcs, groups: groupCompliance(lcs) };
    },
    async complianceCsv(by) {
      const lcs = await lcCompliance(db);
      return by === 'group' ? groupComplianceCsv(groupCompliance(lcs)) : complianceCsv(lcs);
    },
  };
}
