/**
 * Rollouts in the control plane's database: made from the fleet's patch catalogue and LCs (the
 * patch set and the waves are frozen when the rollout is made, so an approval binds to exactly
 * them), moved by `tickRollout` (the pure `decide` applied to what is in the database), and
 * steered by operator commands.
 */
import type pg from 'pg';
import { UnderstudyError } from '../../core/index.ts';
import { resolveRolloutSpec, type ResolvedRolloutSpec } from '../rollout/index.ts';
import {
  selectPatches,
  selectTargets,
  targetKey,
  type FleetPatch,
  type FleetTarget,
} from '../rollout/index.ts';
import {
  applyCommand,
  decide,
  planWaves,
  rollbackTargets,
  unhealthyTargets,
  type Decision,
  type RolloutCommand,
  type RolloutState,
  type WorkState,
  type WorkView,
} from '../rollout/index.ts';

export interface RolloutRow {
  id: number;
  name: string;
  spec: ResolvedRolloutSpec;
  patchSet: string[];
  waves: FleetTarget[][];
  state: RolloutState;
  reason: string | null;
}

/** Queues per-target work through the job queue (graphile-worker in the control plane). */
export interface DispatchQueue {
  dispatch(jobs: readonly DispatchJob[]): Promise<void>;
}

export interface DispatchJob {
  rolloutId: number;
  wave: number;
  host: string;
  lc: string;
  kind: 'patch' | 'rollback';
}

export async function loadCatalogue(db: pg.Pool): Promise<FleetPatch[]> {
  const rows = await db.query<{ name: string; security: boolean; first_seen: Date }>(
    'SELECT name, security, first_seen FROM fleet.patches',
  );
  return rows.rows.map((r) => ({ name: r.name, security: r.security, firstSeen: r.first_seen }));
}

export async function loadTargets(db: pg.Pool): Promise<FleetTarget[]> {
  const rows = await db.query<{
    host_id: string;
    lc: string;
    group_name: string;
    labels: Record<string, string>;
  }>(
    `SELECT l.host_id, l.lc, l.group_name, l.labels FROM fleet.lcs l JOIN fleet.hosts h ON h.id = l.host_id
     WHERE h.revoked_at IS NULL`,
  );
  return rows.rows.map((r) => ({ host: r.host_id, lc: r.lc, group: r.group_name, labels: r.labels }));
}

/**
 * Makes a rollout in state running (awaiting-approval when its spec requires a mail approval);
 * throws FLEET_ROLLOUT_INVALID when it selects no patch or no LC.
 */
export async function createRollout(db: pg.Pool, input: unknown, now: Date): Promise<RolloutRow> {
  const spec = resolveRolloutSpec(input);
  const patches = selectPatches(await loadCatalogue(db), spec.patches, now);
  if (patches.length === 0)
    throw new UnderstudyError(
      'FLEET_ROLLOUT_INVALID',
      `rollout ${spec.name}: the patch selection matches no patch`,
      {
        hint: 'Check `understudy control compliance` for pending patches, and the security/age/explicit rules.',
      },
    );
  const targets = selectTargets(await loadTargets(db), spec.targets);
  if (targets.length === 0)
    throw new UnderstudyError('FLEET_ROLLOUT_INVALID', `rollout ${spec.name}: the target set matches no LC`, {
      hint: 'Check the groups and labels against `understudy control compliance` (every LC with its group).',
    });
  const waves = planWaves(targets, spec);
  const patchSet = patches.map((p) => p.name);
  const state: RolloutState = spec.requireApproval ? 'awaiting-approval' : 'running';
  const row = await db.query<{ id: string }>(
    `INSERT INTO fleet.rollouts (name, spec, patch_set, waves, state, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
    [spec.name, spec, JSON.stringify(patchSet), JSON.stringify(waves), state, now],
  );
  return {
    id: Number(row.rows[0]?.id),
    name: spec.name,
    spec,
    patchSet,
    waves,
    state,
    reason: null,
  };
}

export async function getRollout(db: pg.Pool | pg.PoolClient, id: number): Promise<RolloutRow> {
  const r = await db.query<{
    id: string;
    name: string;
    spec: ResolvedRolloutSpec;
    patch_set: string[];
    waves: FleetTarget[][];
    state: RolloutState;
    reason: string | null;
  }>('SELECT id, name, spec, patch_set, waves, state, reason FROM fleet.rollouts WHERE id = $1', [id]);
  const row = r.rows[0];
  if (!row) throw new UnderstudyError('FLEET_NOT_FOUND', `rollout ${id} does not exist`);
  return {
    id: Number(row.id),
    name: row.name,
    spec: row.spec,
    patchSet: row.patch_set,
    waves: row.waves,
    state: row.state,
    reason: row.reason,
  };
}

export async function loadWork(
  db: pg.Pool | pg.PoolClient,
  rolloutId: number,
  kind: 'patch' | 'rollback' = 'patch',
): Promise<Map<string, WorkView>> {
  const rows = await db.query<{
    host_id: string;
    lc: string;
    state: WorkState;
    finished_at: Date | null;
    unhealthy: boolean;
  }>(
    `SELECT w.host_id, w.lc, w.state, w.finished_at,
       EXISTS (SELECT 1 FROM fleet.reports r WHERE r.work_id = w.id AND r.kind = 'health'
               AND (r.body->>'healthy')::boolean IS NOT TRUE) AS unhealthy
     FROM fleet.work w WHERE w.rollout_id = $1 AND w.kind = $2`,
    [rolloutId, kind],
  );
  return new Map(
    rows.rows.map((r) => [
      targetKey({ host: r.host_id, lc: r.lc }),
      {
        state: r.state,
        ...(r.finished_at ? { finishedAt: r.finished_at } : {}),
        ...(r.unhealthy ? { unhealthy: true } : {}),
      },
    ]),
  );
}

/** Targets of one rollout, wave and kind whose work rows are made in one statement. */
export interface DispatchBatch {
  rolloutId: number;
  wave: number;
  kind: 'patch' | 'rollback';
  targets: { host: string; lc: string }[];
}

/** Splits per-target jobs into batches of at most `size` targets of one rollout, wave and kind. */
export function batchJobs(jobs: readonly DispatchJob[], size: number): DispatchBatch[] {
  const groups = new Map<string, DispatchBatch[]>();
  for (const job of jobs) {
    const key = `${job.rolloutId}:${job.wave}:${job.kind}`;
    const batches = groups.get(key) ?? [];
    let last = batches.at(-1);
    if (!last || last.targets.length >= size) {
      last = { rolloutId: job.rolloutId, wave: job.wave, kind: job.kind, targets: [] };
      batches.push(last);
      groups.set(key, batches);
    }
    last.targets.push({ host: job.host, lc: job.lc });
  }
  return [...groups.values()].flat();
}

/**
 * Makes the work rows of a batch of targets in one statement; a retried or repeated dispatch of
 * the same targets makes nothing again (`UNIQUE (rollout_id, host_id, lc, kind)`), and a target
 * whose host is no longer enrolled is skipped. Returns the number of rows made.
 */
export async function insertWorkBatch(db: pg.Pool | pg.ClientBase, batch: DispatchBatch): Promise<number> {
  const r = await db.query(
    `INSERT INTO fleet.work (rollout_id, wave, host_id, lc, kind, patches)
     SELECT r.id, $2, t.host, t.lc, $3, r.patch_set
     FROM fleet.rollouts r, unnest($4::text[], $5::text[]) WITH ORDINALITY AS t(host, lc, n)
     JOIN fleet.hosts h ON h.id = t.host
     WHERE r.id = $1 AND (r.state = 'running' OR $3 = 'rollback')
     ORDER BY t.n
     ON CONFLICT (rollout_id, host_id, lc, kind) DO NOTHING`,
    [
      batch.rolloutId,
      batch.wave,
      batch.kind,
      batch.targets.map((t) => t.host),
      batch.targets.map((t) => t.lc),
    ],
  );
  return r.rowCount ?? 0;
}

/** Makes one target's work row; a retried or repeated dispatch of the same target makes nothing. */
export async function insertWork(db: pg.Pool | pg.ClientBase, job: DispatchJob): Promise<boolean> {
  const made = await insertWorkBatch(db, { ...job, targets: [{ host: job.host, lc: job.lc }] });
  return made === 1;
}

async function setState(
  db: pg.Pool,
  id: number,
  state: RolloutState,
  reason: string | null,
  now: Date,
): Promise<void> {
  await db.query('UPDATE fleet.rollouts SET state = $2, reason = $3, updated_at = $4 WHERE id = $1', [
    id,
    state,
    reason,
    now,
  ]);
  if (state === 'stopped' || state === 'halted')
    // Rollback work is never cancelled: it takes a switched LC back to its unpatched original.
    await db.query(
      `UPDATE fleet.work SET state = 'cancelled', finished_at = $2
       WHERE rollout_id = $1 AND state = 'queued' AND kind = 'patch'`,
      [id, now],
    );
}

/**
 * Moves a rollout one step: first queues the rollback of every switched LC reported unhealthy
 * during the watch (unless the spec turns automatic rollback off), then decides from its state,
 * its work and the clock, and dispatches, halts or completes. Returns the decision (a wait says
 * until when, if known).
 */
export async function tickRollout(
  db: pg.Pool,
  queue: DispatchQueue,
  id: number,
  now: Date,
): Promise<Decision> {
  const rollout = await getRollout(db, id);
  const work = await loadWork(db, id);
  if (rollout.spec.autoRollback) {
    const back = unhealthyTargets(rollout.waves, work, await loadWork(db, id, 'rollback'));
    await queue.dispatch(
      back.map(({ wave, target }) => ({
        rolloutId: id,
        wave,
        host: target.host,
        lc: target.lc,
        kind: 'rollback' as const,
      })),
    );
  }
  const decision = decide({ spec: rollout.spec, state: rollout.state, waves: rollout.waves, work, now });
  switch (decision.kind) {
    case 'dispatch':
      await queue.dispatch(
        decision.targets.map((t) => ({
          rolloutId: id,
          wave: decision.wave,
          host: t.host,
          lc: t.lc,
          kind: 'patch' as const,
        })),
      );
      break;
    case 'halt':
      await setState(
        db,
        id,
        'halted',
        `wave ${decision.wave + 1}: ${decision.failures} failures > max errors ${decision.maxErrors}`,
        now,
      );
      break;
    case 'complete':
      await setState(db, id, 'completed', null, now);
      break;
    case 'wait':
    case 'idle':
      break;
  }
  return decision;
}

/**
 * Pause, resume or stop (`by`: who, in the rollout's reason); stop cancels work no agent has taken
 * yet. Throws FLEET_ROLLOUT_STATE when the command does not apply to the rollout's state.
 */
export async function commandRollout(
  db: pg.Pool,
  id: number,
  command: RolloutCommand,
  now: Date,
  by = 'an operator',
): Promise<RolloutState> {
  const rollout = await getRollout(db, id);
  const next = applyCommand(rollout.state, command);
  const reason = { stop: `stopped by ${by}`, pause: `paused by ${by}`, resume: null }[command];
  await setState(db, id, next, reason, now);
  return next;
}

/**
 * Rolls one LC of a rollout back to its unpatched original, whatever the rollout's state (also
 * after it completed, halted or was stopped: no tick is needed, the work row is made here). The LC
 * must have switched (its patch work succeeded) and have no rollback yet. While the rollout runs,
 * the reverted LC counts against max errors like any other. Returns the rollback work's id.
 */
export async function rollbackTarget(
  db: pg.Pool,
  id: number,
  target: { host: string; lc: string },
): Promise<{ wave: number; workId: number }> {
  const rollout = await getRollout(db, id);
  const wave = rollout.waves.findIndex((w) => w.some((t) => t.host === target.host && t.lc === target.lc));
  if (wave < 0)
    throw new UnderstudyError('FLEET_NOT_FOUND', `rollout ${id} has no LC ${target.host}/${target.lc}`, {
      hint: 'GET /v1/fleet/rollouts/:id (or `understudy control rollout show`) lists its LCs by wave.',
    });
  const key = targetKey(target);
  const patch = (await loadWork(db, id)).get(key);
  const back = (await loadWork(db, id, 'rollback')).get(key);
  if (back)
    throw new UnderstudyError(
      'FLEET_ROLLOUT_STATE',
      `${target.host}/${target.lc} of rollout ${id} already has a rollback (${back.state})`,
    );
  if (patch?.state !== 'succeeded')
    throw new UnderstudyError(
      'FLEET_ROLLOUT_STATE',
      `${target.host}/${target.lc} of rollout ${id} did not switch to a patched LC (its patch work is ${patch?.state ?? 'not dispatched'}): there is nothing to roll back`,
    );
  await insertWork(db, { rolloutId: id, wave, host: target.host, lc: target.lc, kind: 'rollback' });
  const made = await db.query<{ id: string }>(
    `SELECT id FROM fleet.work WHERE rollout_id = $1 AND host_id = $2 AND lc = $3 AND kind = 'rollback'`,
    [id, target.host, target.lc],
  );
  const workId = made.rows[0]?.id;
  if (workId === undefined)
    throw new UnderstudyError('FLEET_NOT_FOUND', `host ${target.host} is no longer enrolled`);
  return { wave, workId: Number(workId) };
}

/**
 * Rolls a whole wave back: pauses the rollout and queues rollback work for every LC of the wave
 * that switched to its patched standby. Returns the number of LCs to roll back.
 */
export async function rollbackWave(
  db: pg.Pool,
  queue: DispatchQueue,
  id: number,
  wave: number,
  now: Date,
): Promise<number> {
  const rollout = await getRollout(db, id);
  const targets = rollout.waves[wave];
  if (!targets) throw new UnderstudyError('FLEET_NOT_FOUND', `rollout ${id} has no wave ${wave + 1}`);
  if (rollout.state === 'running') await setState(db, id, 'paused', `rolling back wave ${wave + 1}`, now);
  const back = rollbackTargets(targets, await loadWork(db, id));
  await queue.dispatch(
    back.map((t) => ({ rolloutId: id, wave, host: t.host, lc: t.lc, kind: 'rollback' as const })),
  );
  return back.length;
}
