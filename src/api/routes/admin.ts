/** The monitor's feeds, the API's operators and tokens, and the disk copy jobs (as the CLI's commands). */
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../store/index.ts';
import { listFeeds, removeFeed, safeUrl } from '../../monitor/index.ts';
import { getCopyJob, listCopyHistory, listCopyJobs } from '../../disk-copy/index.ts';
import { createApiToken, listApiTokens, revokeApiToken } from '../auth.ts';
import { addRoute } from '../route.ts';
import { copyHistoryQuery, idParams, nameParams, tokenCreateBody } from '../contracts.ts';

export function adminRoutes(app: FastifyInstance, deps: { db: Db }): void {
  const { db } = deps;
  addRoute(app, {
    method: 'GET',
    url: '/v1/feeds',
    tag: 'monitor',
    summary: 'the patch sources the monitor polls (as feed list; credentials in URLs hidden)',
    handler: async () => ({ feeds: listFeeds(db).map((f) => ({ ...f, url: safeUrl(f.url) })) }),
  });
  addRoute(app, {
    method: 'DELETE',
    url: '/v1/feeds/:name',
    tag: 'monitor',
    summary: 'remove a feed (as feed remove; registered patches stay)',
    params: nameParams,
    target: ({ params }) => params.name,
    handler: async ({ params }) => {
      removeFeed(db, params.name);
      return { removed: params.name };
    },
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/tokens',
    tag: 'tokens',
    summary: 'API tokens with operator, scope and last use (as token list; never the tokens)',
    handler: async () => ({ tokens: listApiTokens(db) }),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/tokens',
    tag: 'tokens',
    summary: 'make a token for an operator (as token create); the answer is the only time it is shown',
    body: tokenCreateBody,
    status: 201,
    target: ({ body }) => body.operator,
    handler: async ({ body }) => {
      const created = createApiToken(db, body);
      return { token: created.token, ...created.info };
    },
  });
  addRoute(app, {
    method: 'DELETE',
    url: '/v1/tokens/:id',
    tag: 'tokens',
    summary: 'revoke a token at once (as token revoke)',
    params: idParams,
    target: ({ params }) => params.id,
    handler: async ({ params }) => ({ token: revokeApiToken(db, params.id) }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/disk-copies',
    tag: 'disk-copies',
    summary: 'recent disk copies with their state, freeze time and write history summary (as disk copies)',
    handler: async () => ({ copies: listCopyJobs(db) }),
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/disk-copies/:id',
    tag: 'disk-copies',
    summary: 'one disk copy and the write history recorded during it (as disk history)',
    params: idParams,
    query: copyHistoryQuery,
    handler: async ({ params, query }) => ({
      copy: getCopyJob(db, params.id),
      records: query.limit > 0 ? listCopyHistory(db, params.id, { limit: query.limit }) : [],
    }),
  });
}
