/** The patch monitor (Fig. 19) and approvals (Fig. 20, 1806–1809). */
import type { FastifyInstance } from 'fastify';
import { UnderstudyError, type Logger } from '../../core/index.ts';
import type { Db } from '../../store/index.ts';
import type { EventLog } from '../../events/index.ts';
import {
  listChallenges,
  parseDecision,
  verifyApproval,
  verifyApprovalLink,
  type ApprovalVerdict,
} from '../../mail/index.ts';
import type { Monitor, ResolvedMonitorConfig } from '../../monitor/index.ts';
import { addRoute } from '../route.ts';
import { approvalBody, pollBody } from '../contracts.ts';

export interface MonitorRouteDeps {
  db: Db;
  monitor: Monitor;
  config: ResolvedMonitorConfig;
  events: EventLog;
  logger: Logger;
  now: () => Date;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Applies a verified approval (or refuses it with APPROVAL_REJECTED), and logs it as an event. */
export async function applyApproval(
  deps: MonitorRouteDeps,
  verdict: ApprovalVerdict,
  via: 'api' | 'link',
  operator: string,
): Promise<{ accepted: true; decision: string; patches: string[] }> {
  if (!verdict.ok) {
    deps.logger.warn({ event: 'approval.rejected', via, reason: verdict.reason }, 'approval rejected');
    deps.events.append({
      type: 'approval',
      data: { accepted: false, via, operator, reason: verdict.reason },
    });
    throw new UnderstudyError('APPROVAL_REJECTED', `Approval not accepted: ${verdict.message}`, {
      details: { reason: verdict.reason },
    });
  }
  await deps.monitor.applyVerdict(verdict, via);
  deps.events.append({
    type: 'approval',
    data: { accepted: true, via, operator, decision: verdict.decision.kind, patches: verdict.patches },
  });
  return { accepted: true, decision: verdict.decision.kind, patches: verdict.patches };
}

/** Checks an approval made by an operator with the administrator's code (the same rules as a mailed reply). */
export function verifyCodeApproval(
  deps: MonitorRouteDeps,
  input: { admin: string; challenge: string; decision: string; code: string },
): ApprovalVerdict {
  return verifyApproval({
    db: deps.db,
    admins: deps.config.administrators,
    sender: { name: input.admin },
    challenge: input.challenge.toLowerCase(),
    decision: parseDecision(input.decision),
    code: input.code,
    via: 'api',
    now: deps.now(),
    codeWindowMinutes: deps.config.approval.codeWindowMinutes,
    maxFailedAttempts: deps.config.approval.maxFailedAttempts,
  });
}

export function monitorRoutes(app: FastifyInstance, deps: MonitorRouteDeps): void {
  addRoute(app, {
    method: 'GET',
    url: '/v1/monitor/status',
    tag: 'monitor',
    summary: 'feeds, their last poll, pending notifications',
    handler: async () => deps.monitor.status(),
  });
  addRoute(app, {
    method: 'POST',
    url: '/v1/monitor/poll',
    tag: 'monitor',
    summary: 'poll every feed (or one) now',
    body: pollBody,
    target: ({ body }) => body.feed,
    handler: async ({ body }) => {
      const results = await deps.monitor.pollNow(body.feed);
      // Each poll's start and end reach the event stream from the monitor itself (see buildApi).
      return {
        results: results.map((r) => ({
          feed: r.feed,
          outcome: r.outcome,
          registered: r.registeredNames,
          error: r.error ?? null,
        })),
      };
    },
  });
  addRoute(app, {
    method: 'GET',
    url: '/v1/approvals',
    tag: 'approvals',
    summary: 'the approval queue: open challenges and the patches each covers',
    handler: async () => ({ open: listChallenges(deps.db, { state: 'open' }) }),
  });
  // An operator approving through the API still proves it with the administrator's approval code.
  addRoute(app, {
    method: 'POST',
    url: '/v1/approvals',
    tag: 'approvals',
    summary: 'approve or reject with the administrator’s approval code',
    body: approvalBody,
    target: ({ body }) => body.challenge.slice(0, 12),
    handler: async ({ body, principal }) =>
      applyApproval(deps, verifyCodeApproval(deps, body), 'api', principal.operator),
  });

  const checkLink = (token: string | undefined): ReturnType<typeof verifyApprovalLink> => {
    if (!deps.config.api.linkSecret || !token) return { ok: false, reason: 'malformed' };
    return verifyApprovalLink(deps.config.api.linkSecret, token, deps.now());
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
      now: deps.now(),
      codeWindowMinutes: deps.config.approval.codeWindowMinutes,
      maxFailedAttempts: deps.config.approval.maxFailedAttempts,
    });
    return applyApproval(deps, verdict, 'link', link.claims.admin);
  });
}
