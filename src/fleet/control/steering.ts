/**
 * Operators steering rollouts (through the daemon's API or the CLI): create, pause, resume, stop,
 * roll back a wave or one LC, issue a new approval challenge, approve or reject with an
 * administrator's code. Every action, allowed or refused, is an audit row of the control plane
 * (`fleet.audit`, detail.rolloutId), which is also the rollout's record (`rolloutHistory`).
 */
import type pg from 'pg';
import { isUnderstudyError, silentLogger, type Logger } from '../../core/index.ts';
import type { ApprovalAdmin, Decision } from '../../mail/index.ts';
import { rolloutSpecSchema, type RolloutCommand, type RolloutState } from '../rollout/index.ts';
import { decideRolloutApproval, recordVerdict, refusalText, reissueChallenge } from './approval.ts';
import { audit } from './enrol.ts';
import { syncInventory } from './inventory.ts';
import {
  commandRollout,
  createRollout,
  rollbackTarget,
  rollbackWave,
  type DispatchQueue,
} from './rollouts.ts';
import { rolloutDetail, type RolloutDetail } from './views.ts';

export interface SteeringOptions {
  db: pg.Pool;
  /** The control plane's job queue: dispatches rollback work and starts a rollout's ticks. */
  jobs: { queue: DispatchQueue; kick(rolloutId: number): Promise<void> };
  /** How long an issued challenge stays valid (default 24 h). */
  challengeTtlMs?: number;
  /** Where the operators' commands come from, in the audit (default api). */
  via?: 'api' | 'cli';
  logger?: Logger;
  now?: () => Date;
}

/** An approval through the API: the administrator (with the secret) and the code for the challenge. */
export interface ApiApproval {
  admin: ApprovalAdmin;
  challenge: string;
  decision: Decision;
  code: string;
  codeWindowMinutes?: number;
  maxFailedAttempts?: number;
}

export type ApiApprovalOutcome =
  | { ok: true; rolloutId: number; admin: string; state: 'running' | 'stopped' }
  | { ok: false; reason: string; message: string };

export interface RolloutSteering {
  /** The rollout definition's schema (the API's request body and OpenAPI document). */
  rolloutSpecSchema: typeof rolloutSpecSchema;
  create(spec: unknown, operator: string): Promise<RolloutDetail>;
  command(
    id: number,
    command: RolloutCommand,
    operator: string,
  ): Promise<{ id: number; state: RolloutState }>;
  /** `wave` counts from 1 (the canary). */
  rollbackWave(
    id: number,
    wave: number,
    operator: string,
  ): Promise<{ id: number; wave: number; rollingBack: number }>;
  rollbackLc(
    id: number,
    target: { host: string; lc: string },
    operator: string,
  ): Promise<{ id: number; host: string; lc: string; wave: number; workId: number }>;
  /** A new challenge for `admin` (valid `ttlMs`, default the steering's), replacing earlier ones. */
  reissueChallenge(
    id: number,
    request: { admin: string; ttlMs?: number },
    operator: string,
  ): Promise<{ challenge: string; admin: string; expiresAt: string; patchSet: string[]; replaced: number }>;
  decide(id: number, approval: ApiApproval, operator: string): Promise<ApiApprovalOutcome>;
}

/** The steering of rollouts over the control plane's database and job queue. */
export function rolloutSteering(o: SteeringOptions): RolloutSteering {
  const now = o.now ?? (() => new Date());
  const log = o.logger ?? silentLogger;
  const via = o.via ?? 'api';
  /** Runs an action and audits it: allowed with its result's detail, or refused with the error's code. */
  const audited = async <T>(
    entry: { operator: string; action: string; rolloutId?: number; detail?: Record<string, unknown> },
    fn: () => Promise<T>,
    detailOf: (result: T) => Record<string, unknown> = () => ({}),
  ): Promise<T> => {
    const base = {
      via,
      ...(entry.rolloutId !== undefined ? { rolloutId: entry.rolloutId } : {}),
      ...entry.detail,
    };
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      if (isUnderstudyError(error))
        await audit(o.db, {
          actor: entry.operator,
          action: entry.action,
          outcome: 'refused',
          detail: { ...base, code: error.code, message: error.message.slice(0, 300) },
        });
      throw error;
    }
    await audit(o.db, {
      actor: entry.operator,
      action: entry.action,
      outcome: 'allowed',
      detail: { ...base, ...detailOf(result) },
    });
    log.info(
      { event: `fleet.${entry.action}`, operator: entry.operator, ...base, ...detailOf(result) },
      `${entry.action} by ${entry.operator}`,
    );
    return result;
  };

  return {
    rolloutSpecSchema,
    create: (spec, operator) =>
      audited(
        {
          operator,
          action: 'rollout.create',
          detail: {
            name: typeof spec === 'object' && spec && 'name' in spec ? String(spec.name).slice(0, 100) : null,
          },
        },
        async () => {
          await syncInventory(o.db);
          const made = await createRollout(o.db, spec, now());
          if (made.state === 'running') await o.jobs.kick(made.id);
          return rolloutDetail(o.db, made.id);
        },
        (r) => ({ rolloutId: r.id, state: r.state, patchSet: r.patchSet, targets: r.targets }),
      ),
    command: (id, command, operator) =>
      audited(
        { operator, action: `rollout.${command}`, rolloutId: id },
        async () => {
          const state = await commandRollout(o.db, id, command, now(), operator);
          if (state === 'running') await o.jobs.kick(id);
          return { id, state };
        },
        (r) => ({ state: r.state }),
      ),
    rollbackWave: (id, wave, operator) =>
      audited(
        { operator, action: 'rollout.rollback-wave', rolloutId: id, detail: { wave } },
        async () => ({
          id,
          wave,
          rollingBack: await rollbackWave(o.db, o.jobs.queue, id, wave - 1, now()),
        }),
        (r) => ({ rollingBack: r.rollingBack }),
      ),
    rollbackLc: (id, target, operator) =>
      audited(
        {
          operator,
          action: 'rollout.rollback-lc',
          rolloutId: id,
          detail: { host: target.host, lc: target.lc },
        },
        async () => {
          const made = await rollbackTarget(o.db, id, target);
          return { id, host: target.host, lc: target.lc, ...made };
        },
        (r) => ({ workId: r.workId, wave: r.wave + 1 }),
      ),
    reissueChallenge: (id, { admin, ttlMs }, operator) =>
      audited(
        { operator, action: 'rollout.challenge', rolloutId: id, detail: { admin } },
        async () => {
          const ttl = ttlMs ?? o.challengeTtlMs;
          const issued = await reissueChallenge(o.db, {
            rolloutId: id,
            admin,
            now: now(),
            ...(ttl !== undefined ? { ttlMs: ttl } : {}),
          });
          return { ...issued, expiresAt: issued.expiresAt.toISOString() };
        },
        (r) => ({ challenge: r.challenge.slice(0, 8), replaced: r.replaced, expiresAt: r.expiresAt }),
      ),
    async decide(id, approval, operator) {
      const verdict = await decideRolloutApproval(
        {
          db: o.db,
          now,
          ...(approval.codeWindowMinutes !== undefined
            ? { codeWindowMinutes: approval.codeWindowMinutes }
            : {}),
          ...(approval.maxFailedAttempts !== undefined
            ? { maxFailedAttempts: approval.maxFailedAttempts }
            : {}),
        },
        {
          admin: approval.admin,
          from: operator,
          challenge: approval.challenge,
          decision: approval.decision,
          code: approval.code,
          via: via === 'api' ? `through the API (operator ${operator})` : `from the CLI (${operator})`,
          rolloutId: id,
        },
      );
      await recordVerdict(o.db, log, verdict, { via, operator, challenge: approval.challenge });
      if (!verdict.ok) return { ok: false, reason: verdict.reason, message: refusalText(verdict.reason) };
      if (verdict.state === 'running') await o.jobs.kick(id);
      return { ok: true, rolloutId: verdict.rolloutId, admin: verdict.admin, state: verdict.state };
    },
  };
}
