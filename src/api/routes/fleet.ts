/**
 * The fleet, read-only, when this daemon runs next to a control plane: rollouts with their state and
 * work counts, one rollout's waves with each target's work, and the enrolled hosts (read scope).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { addRoute } from '../route.ts';
import type { FleetReader } from '../fleet-reader.ts';

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
