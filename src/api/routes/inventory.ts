/** Host and pools, images, logical computers (the resource table of Fig. 5). */
import type { FastifyInstance } from 'fastify';
import { addRoute } from '../route.ts';
import {
  imageBuildBody,
  lcCreateBody,
  lcDestroyQuery,
  lcStartBody,
  lcStopBody,
  nameParams,
  serviceQuery,
} from '../contracts.ts';
import type { Operations } from '../operations.ts';

export function inventoryRoutes(app: FastifyInstance, ops: Operations): void {
  addRoute(app, {
    method: 'GET',
    url: '/v1/host',
    tag: 'host',
    summary: 'the host: pools with usage, the bridge, CPU and memory capacity',
    handler: () => ops.host(),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/images',
    tag: 'images',
    summary: 'built images',
    handler: async () => ({ images: ops.images() }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/images',
    tag: 'images',
    summary:
      'build an image (as understudy image build); answers once it started, its progress follows on /v1/events as image.build',
    body: imageBuildBody,
    status: 202,
    target: ({ body }) => body.name ?? body.recipe,
    handler: async ({ body }) => ({ build: await ops.buildImage(body) }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/lcs',
    tag: 'lcs',
    summary: 'every LC with its role, resources and state',
    handler: async () => ({ lcs: await ops.lcs() }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/lcs/:name',
    tag: 'lcs',
    summary: 'one LC: resources, state, usage',
    params: nameParams,
    handler: async ({ params }) => ({ lc: await ops.lc(params.name) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs',
    tag: 'lcs',
    summary: 'create an LC from an image (and start it with start: true)',
    body: lcCreateBody,
    status: 201,
    target: ({ body }) => body.name,
    handler: async ({ body }) => ({ lc: await ops.createLc(body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/:name/start',
    tag: 'lcs',
    summary: 'boot the LC; waits until its start-up finished unless wait is false',
    params: nameParams,
    body: lcStartBody,
    target: ({ params }) => params.name,
    handler: async ({ params, body }) => ({ status: await ops.startLc(params.name, body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/:name/stop',
    tag: 'lcs',
    summary: 'orderly shutdown, killed after timeoutMs',
    params: nameParams,
    body: lcStopBody,
    target: ({ params }) => params.name,
    handler: async ({ params, body }) => ({ result: await ops.stopLc(params.name, body) }),
  });
  addRoute(app, {
    method: 'DELETE',
    url: '/v1/lcs/:name',
    tag: 'lcs',
    summary: 'destroy the LC: disks, NICs, record (force=true stops it first)',
    params: nameParams,
    query: lcDestroyQuery,
    target: ({ params }) => params.name,
    handler: async ({ params, query }) => {
      await ops.destroyLc(params.name, { force: query.force === 'true' });
      return { destroyed: params.name };
    },
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/lcs/:name/service',
    tag: 'lcs',
    summary:
      'the health of the LC’s declared service, checked once as a patch run checks it (HTTP path and status, TCP connect, or a command inside); ?port= or ?path= ask for an HTTP GET instead',
    params: nameParams,
    query: serviceQuery,
    handler: async ({ params, query }) => ops.serviceHealth(params.name, query),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/lcs/:name/standby-for',
    tag: 'lcs',
    summary: 'which unused LCs can stand in for this one (step 701), best fit first',
    params: nameParams,
    handler: async ({ params }) => ops.standbyFor(params.name),
  });
}
