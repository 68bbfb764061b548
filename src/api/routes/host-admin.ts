/**
 * Routes of the CLI commands that act on the host itself: `host pool-add`, `image import`,
 * `lc import`, `lc exec`, `lc nic add|remove`, `apply`, `disk copy`, `feed add`.
 */
import type { FastifyInstance } from 'fastify';
import { addRoute } from '../route.ts';
import {
  applyBody,
  diskCopyBody,
  feedAddBody,
  imageImportBody,
  lcExecBody,
  lcImportBody,
  nameParams,
  nicAddBody,
  nicParams,
  poolAddBody,
} from '../contracts.ts';
import type { HostAdminOperations } from '../host-admin.ts';
import { safeUrl } from '../../monitor/index.ts';

export function hostAdminRoutes(app: FastifyInstance, ops: HostAdminOperations): void {
  addRoute(app, {
    method: 'POST',
    url: '/v1/host/pools',
    tag: 'host',
    summary: 'add a storage pool on a device or a sparse loop image (as host pool-add)',
    body: poolAddBody,
    status: 201,
    target: ({ body }) => body.name,
    handler: async ({ body }) => ({ pool: await ops.addPool(body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/images/import',
    tag: 'images',
    summary: 'make an image of a root filesystem or tar archive on the host (as image import)',
    body: imageImportBody,
    status: 201,
    target: ({ body }) => body.name,
    handler: async ({ body }) => ({ image: await ops.importImage(body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/import',
    tag: 'lcs',
    summary: 'take over an existing (stopped) LXC container as an LC on the LXC driver (as lc import)',
    body: lcImportBody,
    status: 201,
    target: ({ body }) => body.name ?? body.container,
    handler: async ({ body }) => ({ imported: await ops.importLxc(body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/:name/exec',
    tag: 'lcs',
    summary:
      'run a command inside the LC (as lc exec); answers with its exit code, stdout and stderr, whatever the exit code',
    params: nameParams,
    body: lcExecBody,
    target: ({ params }) => params.name,
    handler: async ({ params, body }) => ({ result: await ops.execInLc(params.name, body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/lcs/:name/nics',
    tag: 'lcs',
    summary: 'plug a NIC on the bridge into the LC, running or not (as lc nic add)',
    params: nameParams,
    body: nicAddBody,
    status: 201,
    target: ({ params }) => params.name,
    handler: async ({ params, body }) => ({ nic: await ops.addNic({ lc: params.name, ...body }) }),
  });
  addRoute(app, {
    method: 'DELETE',
    url: '/v1/lcs/:name/nics/:nic',
    tag: 'lcs',
    summary: 'unplug a NIC from the LC (as lc nic remove)',
    params: nicParams,
    target: ({ params }) => `${params.name}/${params.nic}`,
    handler: async ({ params }) => {
      await ops.removeNic(params.name, params.nic);
      return { lc: params.name, removed: params.nic };
    },
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/apply',
    tag: 'host',
    summary:
      'create what a YAML host description lists and the host lacks: pools, images, LCs (as apply; the host must be initialised)',
    body: applyBody,
    target: ({ body }) => body.file,
    handler: async ({ body }) => ({ changes: await ops.apply(body) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/disk-copies',
    tag: 'disk-copies',
    summary:
      "copy an LC's disk live onto a stopped LC's disk (as disk copy); answers when the copy is in place, its progress follows on /v1/events as copy.progress",
    body: diskCopyBody,
    status: 201,
    target: ({ body }) => `${body.from}/${body.disk} -> ${body.to}/${body.toDisk ?? body.disk}`,
    handler: async ({ body }) => {
      const { records: _records, ...copy } = await ops.copyDisk(body);
      return { copy };
    },
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/feeds',
    tag: 'monitor',
    summary: 'add a patch source (as feed add); the same checks, a keyring is a path on the host',
    body: feedAddBody,
    status: 201,
    target: ({ body }) => body.name,
    handler: async ({ body }) => {
      const feed = ops.addFeed(body);
      return { feed: { ...feed, url: safeUrl(feed.url) } };
    },
  });
}
