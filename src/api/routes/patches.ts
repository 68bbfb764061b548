/** The patch table (Fig. 6): list, add, mark for the next run. */
import type { FastifyInstance } from 'fastify';
import type { Catalogue } from '../../catalogue/index.ts';
import { addRoute } from '../route.ts';
import { nameParams, nextRunBody, patchAddBody, patchListQuery } from '../contracts.ts';
import type { Operations } from '../operations.ts';

/** Security patches first, then by name. */
const securityFirst = <T extends { name: string; categories: string[] }>(patches: T[]): T[] =>
  [...patches].sort(
    (a, b) =>
      Number(b.categories.includes('security')) - Number(a.categories.includes('security')) ||
      a.name.localeCompare(b.name),
  );

export function patchRoutes(app: FastifyInstance, ops: Operations, catalogue: Catalogue): void {
  addRoute(app, {
    method: 'GET',
    url: '/v1/patches',
    tag: 'patches',
    summary: 'registered patches; with lc, their state on that LC (security first)',
    query: patchListQuery,
    handler: async ({ query }) => {
      const patches = catalogue.listPatches();
      if (!query.lc) return { patches };
      const states = new Map(catalogue.lcStates({ lc: query.lc }).map((s) => [s.patch, s]));
      return {
        lc: query.lc,
        patches: securityFirst(patches.map((p) => ({ ...p, state: states.get(p.name) ?? null }))),
      };
    },
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/patches/:name',
    tag: 'patches',
    summary: 'one patch and its state on every LC',
    params: nameParams,
    handler: async ({ params }) => {
      const patch = catalogue.getPatch(params.name);
      return { patch, lcs: catalogue.lcStates({ patch: patch.name }) };
    },
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/patches',
    tag: 'patches',
    summary: 'register a patch file (uploaded as base64; sha256 checked when given)',
    body: patchAddBody,
    status: 201,
    bodyLimit: 128 * 1024 * 1024,
    target: ({ body }) => body.name,
    handler: async ({ body }) =>
      ops.addPatch({ ...body, content: Buffer.from(body.contentBase64, 'base64') }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/patches/:name/next-run',
    tag: 'patches',
    summary: 'set or clear "apply at next run" for a patch on an LC',
    params: nameParams,
    body: nextRunBody,
    target: ({ params, body }) => `${params.name}@${body.lc}`,
    handler: async ({ params, body }) => ({
      state: ops.markNextRun({ patch: params.name, lc: body.lc, on: body.nextRun }),
    }),
  });
}
