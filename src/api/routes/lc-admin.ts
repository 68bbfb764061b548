/** An LC's services, role, reboot and pending Debian updates; image removal (as the CLI's commands). */
import type { FastifyInstance } from 'fastify';
import { addRoute } from '../route.ts';
import { nameParams, roleBody, servicesBody, updatesApplyBody, updatesQuery } from '../contracts.ts';
import type { Operations } from '../operations.ts';

export function lcAdminRoutes(app: FastifyInstance, ops: Operations): void {
  addRoute(app, {
    method: 'GET',
    url: '/v1/lcs/:name/services',
    tag: 'lcs',
    summary: 'the services the LC declares (as lc service show): process, ports, health, drain, hold, data',
    params: nameParams,
    handler: async ({ params }) => ({ lc: params.name, services: ops.services(params.name) }),
  });
  addRoute(app, {
    method: 'PUT',
    url: '/v1/lcs/:name/services',
    tag: 'lcs',
    summary: 'replace the services the LC declares (as lc service set); checked as the LC’s YAML is',
    params: nameParams,
    body: servicesBody,
    target: ({ params }) => params.name,
    handler: async ({ params, body }) => ({
      lc: params.name,
      services: ops.setServices(params.name, body.services),
    }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/:name/role',
    tag: 'lcs',
    summary: 'set the LC’s role (as lc role)',
    params: nameParams,
    body: roleBody,
    target: ({ params }) => params.name,
    handler: async ({ params, body }) => ops.setRole(params.name, body.role),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/:name/reboot',
    tag: 'lcs',
    summary: 'restart the LC and wait until it is up (as lc reboot)',
    params: nameParams,
    target: ({ params }) => params.name,
    handler: async ({ params }) => ({ status: await ops.rebootLc(params.name) }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/lcs/:name/updates',
    tag: 'updates',
    summary:
      'the Debian updates pending for the LC (as updates <lc>): its dpkg status against the verified apt feeds, the packages that must move together',
    params: nameParams,
    query: updatesQuery,
    handler: async ({ params, query }) =>
      ops.updates(params.name, { feeds: query.feed ?? [], packages: query.package ?? [], apply: false }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/:name/updates',
    tag: 'updates',
    summary:
      'register the pending updates’ verified .deb files and mark them for the LC’s next run (as updates <lc> --apply); all or nothing',
    params: nameParams,
    body: updatesApplyBody,
    target: ({ params }) => params.name,
    handler: async ({ params, body }) =>
      ops.updates(params.name, { feeds: body.feeds, packages: body.packages, apply: true }),
  });
  addRoute(app, {
    method: 'DELETE',
    url: '/v1/images/:name',
    tag: 'images',
    summary: 'delete an image (as image remove; LCs made from it keep working)',
    params: nameParams,
    target: ({ params }) => params.name,
    handler: async ({ params }) => {
      await ops.removeImage(params.name);
      return { removed: params.name };
    },
  });
}
