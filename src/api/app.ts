/**
 * The daemon's HTTP API (fastify). Every route needs `Authorization: Bearer <api token>` except
 * /v1/health and the signed approval links (their own signature authenticates them).
 * Errors answer `{statusCode, code, error, message}`. More routes plug in with `app.register`
 * on the returned instance before it listens.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { UnderstudyError, isUnderstudyError, type ErrorCode, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import {
  listChallenges,
  parseDecision,
  verifyApproval,
  verifyApprovalLink,
  type ApprovalVerdict,
} from '../mail/index.ts';
import type { Monitor, ResolvedMonitorConfig } from '../monitor/index.ts';
import { bearerToken, tokenMatches } from './auth.ts';

export interface ApiDeps {
  db: Db;
  catalogue: Catalogue;
  monitor: Monitor;
  config: ResolvedMonitorConfig;
  logger: Logger;
  now?: () => Date;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the API token. */
    public?: boolean;
  }
}

const statusOf: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  API_UNAUTHORIZED: 401,
  APPROVAL_REJECTED: 403,
  PATCH_NOT_FOUND: 404,
  FEED_NOT_FOUND: 404,
  PATCH_EXISTS: 409,
  FEED_EXISTS: 409,
};

const reasonPhrase: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  500: 'Internal Server Error',
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const now = deps.now ?? (() => new Date());
  const app = Fastify({ loggerInstance: deps.logger, bodyLimit: 1024 * 1024 });

  app.setErrorHandler((error, request, reply) => {
    if (isUnderstudyError(error)) {
      const statusCode = statusOf[error.code] ?? 500;
      return reply.status(statusCode).send({
        statusCode,
        code: error.code,
        error: reasonPhrase[statusCode] ?? 'Error',
        message: error.message,
        hint: error.hint,
      });
    }
    const e = error as { statusCode?: number; message?: string; validation?: unknown };
    if (e.statusCode && e.statusCode < 500) {
      return reply.status(e.statusCode).send({
        statusCode: e.statusCode,
        code: 'INVALID_ARGUMENT',
        error: reasonPhrase[e.statusCode] ?? 'Error',
        message: e.message ?? 'bad request',
      });
    }
    request.log.error({ err: error }, 'request failed');
    return reply
      .status(500)
      .send({ statusCode: 500, code: 'INTERNAL', error: 'Internal Server Error', message: 'internal error' });
  });

  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public) return;
    if (!tokenMatches(bearerToken(request.headers.authorization), deps.config.api.token)) {
      throw new UnderstudyError(
        'API_UNAUTHORIZED',
        deps.config.api.token
          ? 'Missing or wrong API token'
          : 'No API token is configured, so the API refuses every request',
        {
          hint: deps.config.api.token
            ? 'Send Authorization: Bearer <token>.'
            : 'Set api.token (or api.tokenFile) in the monitor configuration.',
        },
      );
    }
  });

  app.get('/v1/health', { config: { public: true } }, async () => ({ ok: true }));

  app.get('/v1/monitor/status', async () => deps.monitor.status());

  app.post<{ Body: { feed?: string } | undefined }>('/v1/monitor/poll', async (request) => {
    const results = await deps.monitor.pollNow(request.body?.feed);
    return {
      results: results.map((r) => ({
        feed: r.feed,
        outcome: r.outcome,
        registered: r.registeredNames,
        error: r.error ?? null,
      })),
    };
  });

  app.get<{ Querystring: { lc?: string } }>('/v1/patches', async (request) => {
    const patches = deps.catalogue.listPatches();
    if (!request.query.lc) return { patches };
    const states = new Map(deps.catalogue.lcStates({ lc: request.query.lc }).map((s) => [s.patch, s]));
    return {
      lc: request.query.lc,
      patches: patches.map((p) => ({ ...p, state: states.get(p.name) ?? null })),
    };
  });

  app.get<{ Params: { name: string } }>('/v1/patches/:name', async (request) => {
    const patch = deps.catalogue.getPatch(request.params.name);
    return { patch, lcs: deps.catalogue.lcStates({ patch: patch.name }) };
  });

  app.post<{ Params: { name: string }; Body: { lc: string; nextRun: boolean } }>(
    '/v1/patches/:name/next-run',
    {
      schema: {
        body: {
          type: 'object',
          required: ['lc', 'nextRun'],
          properties: { lc: { type: 'string', minLength: 1 }, nextRun: { type: 'boolean' } },
        },
      },
    },
    async (request) => ({
      state: deps.catalogue.markNextRun(request.params.name, request.body.lc, request.body.nextRun),
    }),
  );

  app.get('/v1/approvals', async () => ({ open: listChallenges(deps.db, { state: 'open' }) }));

  const applyVerdict = async (
    verdict: ApprovalVerdict,
    via: 'api' | 'link',
  ): Promise<{ accepted: true; decision: string; patches: string[] }> => {
    if (!verdict.ok) {
      deps.logger.warn({ event: 'approval.rejected', via, reason: verdict.reason }, 'approval rejected');
      throw new UnderstudyError('APPROVAL_REJECTED', `Approval not accepted: ${verdict.message}`, {
        details: { reason: verdict.reason },
      });
    }
    await deps.monitor.applyVerdict(verdict, via);
    return { accepted: true, decision: verdict.decision.kind, patches: verdict.patches };
  };

  // An administrator approving through the API still proves it with the OCRA code.
  app.post<{ Body: { admin: string; challenge: string; decision: string; code: string } }>(
    '/v1/approvals',
    {
      schema: {
        body: {
          type: 'object',
          required: ['admin', 'challenge', 'decision', 'code'],
          properties: {
            admin: { type: 'string' },
            challenge: { type: 'string' },
            decision: { type: 'string' },
            code: { type: 'string' },
          },
        },
      },
    },
    async (request) => {
      const b = request.body;
      const verdict = verifyApproval({
        db: deps.db,
        admins: deps.config.administrators,
        sender: { name: b.admin },
        challenge: b.challenge.toLowerCase(),
        decision: parseDecision(b.decision),
        code: b.code,
        via: 'api',
        now: now(),
        codeWindowMinutes: deps.config.approval.codeWindowMinutes,
      });
      return applyVerdict(verdict, 'api');
    },
  );

  const checkLink = (token: string | undefined): ReturnType<typeof verifyApprovalLink> => {
    if (!deps.config.api.linkSecret || !token) return { ok: false, reason: 'malformed' };
    return verifyApprovalLink(deps.config.api.linkSecret, token, now());
  };

  // GET only shows the decision (mail scanners pre-fetch links); the POST of its form applies it.
  app.get<{ Querystring: { t?: string } }>(
    '/v1/approvals/link',
    { config: { public: true } },
    async (request, reply) => {
      const link = checkLink(request.query.t);
      reply.type('text/html; charset=utf-8');
      if (!link.ok) return reply.status(403).send(`<p>This approval link is not valid (${link.reason}).</p>`);
      const c = link.claims;
      return `<!doctype html><title>understudy approval</title><p>${escapeHtml(c.admin)}: ${escapeHtml(c.decision.kind)} for challenge ${escapeHtml(c.challenge.slice(0, 8))}…</p>
<form method="post" action="/v1/approvals/link"><input type="hidden" name="t" value="${escapeHtml(request.query.t ?? '')}"><button>Confirm</button></form>`;
    },
  );

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.post<{ Body: { t?: string } }>('/v1/approvals/link', { config: { public: true } }, async (request) => {
    const link = checkLink(request.body?.t);
    if (!link.ok)
      throw new UnderstudyError('APPROVAL_REJECTED', `Approval link not accepted: ${link.reason}`, {
        details: { reason: link.reason },
      });
    const verdict = verifyApproval({
      db: deps.db,
      admins: deps.config.administrators,
      sender: { name: link.claims.admin },
      challenge: link.claims.challenge,
      decision: link.claims.decision,
      code: null,
      via: 'link',
      now: now(),
      codeWindowMinutes: deps.config.approval.codeWindowMinutes,
    });
    return applyVerdict(verdict, 'link');
  });

  return app as unknown as FastifyInstance;
}
