/** Patch runs (Fig. 7) and the switch journal. */
import type { FastifyInstance } from 'fastify';
import { addRoute } from '../route.ts';
import { parseSwitchMethod } from '../../switch/index.ts';
import { idParams, runListQuery, runStartBody, switchStartBody } from '../contracts.ts';
import type { Operations } from '../operations.ts';

export function runRoutes(app: FastifyInstance, ops: Operations): void {
  addRoute(app, {
    method: 'GET',
    url: '/v1/runs',
    tag: 'runs',
    summary: 'patch runs, newest first',
    query: runListQuery,
    handler: async ({ query }) => ({ runs: ops.runs(query) }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/runs/:id',
    tag: 'runs',
    summary: 'one run with every step, its state, attempts and timings, and the facts it learnt',
    params: idParams,
    handler: async ({ params }) => ({ run: ops.run(params.id) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/runs',
    tag: 'runs',
    summary: 'start a patch run; answers once the run exists, its steps follow on /v1/events',
    body: runStartBody,
    status: 202,
    target: ({ body }) => body.lc,
    handler: async ({ body }) => ({ run: await ops.startRun(body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/runs/:id/resume',
    tag: 'runs',
    summary: 'continue a run whose manager stopped',
    params: idParams,
    status: 202,
    target: ({ params }) => params.id,
    handler: async ({ params }) => ({ run: await ops.resumeRun(params.id) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/runs/:id/rollback',
    tag: 'runs',
    summary: 'move the service back to the original LC with the data written since the switch',
    params: idParams,
    status: 202,
    target: ({ params }) => params.id,
    handler: async ({ params }) => ({ run: await ops.rollbackRun(params.id) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/runs/:id/cancel',
    tag: 'runs',
    summary: 'cancel a run before its switch (the point of no return); the standby is discarded',
    params: idParams,
    status: 202,
    target: ({ params }) => params.id,
    handler: async ({ params }) => ({ run: ops.cancelRun(params.id) }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/switches',
    tag: 'switches',
    summary: 'the switch journal, newest first',
    handler: async () => ({ switches: ops.switches() }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/switches',
    tag: 'switches',
    summary:
      'move the service from one LC to another (as understudy switch); answers once its first phase ended, its phases follow on /v1/events',
    body: switchStartBody,
    status: 202,
    target: ({ body }) => `${body.from} -> ${body.to}`,
    handler: async ({ body }) =>
      ops.startSwitch({
        from: body.from,
        to: body.to,
        // SWITCH_METHOD_UNKNOWN, as the CLI's --method answers.
        method: parseSwitchMethod(body.method),
        stateful: body.stateful,
        fromAddress: body.fromAddress,
        drainTimeoutMs: body.drainTimeoutMs,
      }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/switches/:id',
    tag: 'switches',
    summary: 'one switch with its steps',
    params: idParams,
    handler: async ({ params }) => ({ switch: ops.switchRecord(params.id) }),
  });
}
