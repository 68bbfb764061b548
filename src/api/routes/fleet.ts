/**
 * The fleet, when this daemon runs next to a control plane: rollouts with their state and work
 * counts, one rollout's waves with each target's work and its record, the enrolled hosts and
 * compliance (read scope); and, with the admin scope, rollouts created and steered: pause, resume,
 * abort, roll back a wave or one LC, issue an administrator a new approval challenge, approve or
 * reject with the administrator's code (the rules of a mailed reply). Every change is audited twice:
 * in the daemon's audit log (as every API change) and in the control plane's, under the operator.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { UnderstudyError } from '../../core/index.ts';
import { parseDecision, type ApprovalAdmin } from '../../mail/index.ts';
import type { ResolvedMonitorConfig } from '../../monitor/index.ts';
import { addRoute } from '../route.ts';
import { approvalBody } from '../contracts.ts';
import type { FleetControl, FleetReader } from '../fleet-reader.ts';

const complianceQuery = z.object({
  format: z.enum(['json', 'csv']).default('json'),
  by: z.enum(['lc', 'group']).default('lc'),
});

const rolloutParams = z.object({ id: z.coerce.number().int().positive() });

export function fleetRoutes(app: FastifyInstance, fleet: FleetReader): void {
  addRoute(app, {
    method: 'GET',
    url: '/v1/fleet/rollouts',
    tag: 'fleet',
    summary: 'rollouts, newest first, with their state and their work by state',
    handler: async () => ({ rollouts: await fleet.rollouts() }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/fleet/rollouts/:id',
    tag: 'fleet',
    summary: "one rollout: its spec, patch set, and waves with each target's work and rollback",
    params: rolloutParams,
    handler: async ({ params }) => ({ rollout: await fleet.rollout(params.id) }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/fleet/hosts',
    tag: 'fleet',
    summary: 'enrolled hosts with their last heartbeat, LCs and open work',
    handler: async () => ({ hosts: await fleet.hosts() }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/fleet/compliance',
    tag: 'fleet',
    summary:
      'compliance per LC and per group: pending security updates with their age, last run and result, days since the last patch, last health (format=csv, by=lc|group)',
    query: complianceQuery,
    handler: async ({ query, reply }) => {
      if (query.format === 'json') return fleet.compliance();
      reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="compliance-by-${query.by}.csv"`);
      return fleet.complianceCsv(query.by);
    },
  });
}

const lcParams = z.object({
  id: z.coerce.number().int().positive(),
  host: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  lc: z.string().min(1).max(64),
});
const waveParams = z.object({
  id: z.coerce.number().int().positive(),
  wave: z.coerce.number().int().positive().describe('1 = the canary'),
});
const challengeBody = z
  .object({ admin: z.string().min(1).max(64).describe("an administrator of this daemon's configuration") })
  .strict();

export interface FleetControlRouteDeps {
  control: FleetControl;
  config: Pick<ResolvedMonitorConfig, 'administrators' | 'approval'>;
}

/** The administrator of this daemon's configuration named `name`. */
function administrator(deps: FleetControlRouteDeps, name: string): ApprovalAdmin | undefined {
  return deps.config.administrators.find((a) => a.name === name);
}

export function fleetControlRoutes(app: FastifyInstance, deps: FleetControlRouteDeps): void {
  const { control } = deps;
  const target = ({ params }: { params: { id: number } }): string => `rollout ${params.id}`;
  addRoute(app, {
    method: 'POST',
    url: '/v1/fleet/rollouts',
    tag: 'fleet',
    summary:
      'create a rollout: patch selection, targets (groups, labels), maintenance windows per group, canary, max concurrency, max errors, watch time, mail approval; it starts at once unless it requires an approval',
    body: control.rolloutSpecSchema,
    status: 201,
    target: ({ body }) =>
      typeof body === 'object' && body && 'name' in body ? `rollout "${String(body.name)}"` : undefined,
    handler: async ({ body, principal }) => ({ rollout: await control.create(body, principal.operator) }),
  });
  for (const [command, verb] of [
    ['pause', 'pause'],
    ['resume', 'resume'],
    ['stop', 'abort'],
  ] as const)
    addRoute(app, {
      method: 'POST',
      url: `/v1/fleet/rollouts/:id/${verb}`,
      tag: 'fleet',
      summary: {
        pause: 'pause a running rollout: nothing new is dispatched; work agents took finishes',
        resume: 'resume a paused rollout (never one awaiting approval: only an approval starts it)',
        stop: 'abort a rollout: it stops for good and work no agent took yet is cancelled',
      }[command],
      params: rolloutParams,
      target,
      handler: async ({ params, principal }) => control.command(params.id, command, principal.operator),
    });
  addRoute(app, {
    method: 'POST',
    url: '/v1/fleet/rollouts/:id/waves/:wave/rollback',
    tag: 'fleet',
    summary: 'roll back every LC of a wave that switched (1 = the canary); a running rollout pauses',
    params: waveParams,
    status: 202,
    target,
    handler: async ({ params, principal }) =>
      control.rollbackWave(params.id, params.wave, principal.operator),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/fleet/rollouts/:id/lcs/:host/:lc/rollback',
    tag: 'fleet',
    summary:
      "roll one LC of a rollout back to its unpatched original, also after the rollout ended (the rollout's record and waves show it)",
    params: lcParams,
    status: 202,
    target: ({ params }) => `rollout ${params.id} ${params.host}/${params.lc}`,
    handler: async ({ params, principal }) =>
      control.rollbackLc(params.id, { host: params.host, lc: params.lc }, principal.operator),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/fleet/rollouts/:id/challenges',
    tag: 'fleet',
    summary:
      "issue an administrator a new approval challenge for a rollout awaiting approval (the mail expired or was lost); the administrator's earlier challenge and its code are refused from then on",
    params: rolloutParams,
    body: challengeBody,
    status: 201,
    target,
    handler: async ({ params, body, principal }) => {
      if (!administrator(deps, body.admin))
        throw new UnderstudyError(
          'INVALID_ARGUMENT',
          `"${body.admin}" is not an administrator of this daemon's configuration`,
          { hint: 'The administrators section of monitor.yaml names who may approve.' },
        );
      return control.reissueChallenge(
        params.id,
        { admin: body.admin, ttlMs: deps.config.approval.challengeTtlHours * 3600_000 },
        principal.operator,
      );
    },
  });
  // Approving through the API still proves it with the administrator's approval code, checked
  // against the rollout's challenge with the rules of a mailed reply.
  addRoute(app, {
    method: 'POST',
    url: '/v1/fleet/rollouts/:id/approval',
    tag: 'fleet',
    summary:
      "approve or reject a rollout awaiting approval with the administrator's code for its challenge (`understudy approve-code`)",
    params: rolloutParams,
    body: approvalBody,
    target,
    handler: async ({ params, body, principal }) => {
      const admin = administrator(deps, body.admin);
      const outcome = admin
        ? await control.decide(
            params.id,
            {
              admin,
              challenge: body.challenge,
              decision: parseDecision(body.decision),
              code: body.code,
              codeWindowMinutes: deps.config.approval.codeWindowMinutes,
              maxFailedAttempts: deps.config.approval.maxFailedAttempts,
            },
            principal.operator,
          )
        : ({
            ok: false,
            reason: 'unknown-sender',
            message: 'the sender is not a configured administrator',
          } as const);
      if (!outcome.ok)
        throw new UnderstudyError('APPROVAL_REJECTED', `Approval not accepted: ${outcome.message}`, {
          details: { reason: outcome.reason },
        });
      return { accepted: true, rolloutId: outcome.rolloutId, admin: outcome.admin, state: outcome.state };
    },
  });
}
