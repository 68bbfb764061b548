/**
 * The live event stream (Server-Sent Events) over the durable event log, the audit log, and the
 * OpenAPI document. A client resumes with `Last-Event-ID` (or `after`); without either the stream
 * starts at the present. `follow=false` sends what is stored and ends (for scripts and tests).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Db } from '../../store/index.ts';
import type { EventLog, StoredEvent } from '../../events/index.ts';
import { addRoute, openApiDocument } from '../route.ts';
import { auditQuery } from '../contracts.ts';
import { listAudit } from '../audit.ts';

const streamQuery = z
  .object({
    after: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe('resume after this event id (or Last-Event-ID)'),
    run: z.string().max(64).optional().describe('only the events of this run'),
    follow: z.enum(['true', 'false']).default('true').describe('false: send the stored events and end'),
  })
  .strict();

const heartbeatMs = 15_000;
/** Events another process wrote reach the stream within this time. */
const storePollMs = 500;

export const formatSse = (e: StoredEvent): string =>
  `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;

export function eventRoutes(app: FastifyInstance, deps: { db: Db; events: EventLog; version: string }): void {
  const open = new Set<() => void>();
  // Before the server closes: it waits for every open connection, and a followed stream never ends
  // by itself (an open dashboard would keep serve from shutting down).
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });

  addRoute(app, {
    method: 'GET',
    url: '/v1/events',
    tag: 'events',
    summary:
      'Server-Sent Events: run steps with durations, copy progress, switch phases, monitor polls, approvals, audit; resumes from Last-Event-ID',
    query: streamQuery,
    handler: async ({ query, request, reply }) => {
      const header = request.headers['last-event-id'];
      const fromHeader = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : undefined;
      let last = fromHeader ?? query.after ?? (query.run ? 0 : deps.events.lastId());
      const runId = query.run;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: 2000\n\n`);
      const flush = (): void => {
        for (;;) {
          const batch = deps.events.after(last, { runId, limit: 500 });
          for (const e of batch) res.write(formatSse(e));
          if (batch.length > 0) last = (batch[batch.length - 1] as StoredEvent).id;
          if (batch.length < 500) break;
        }
      };
      flush();
      if (query.follow === 'false') {
        res.end();
        return;
      }
      const unsubscribe = deps.events.subscribe(() => flush());
      const poll = setInterval(flush, storePollMs);
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
      const end = (): void => {
        unsubscribe();
        clearInterval(poll);
        clearInterval(heartbeat);
        open.delete(end);
        if (!res.writableEnded) res.end();
      };
      open.add(end);
      request.raw.on('close', end);
    },
  });

  addRoute(app, {
    method: 'GET',
    url: '/v1/audit',
    tag: 'audit',
    summary: 'changes made through the API: who, what, when, outcome (newest first)',
    query: auditQuery,
    handler: async ({ query }) => ({ entries: listAudit(deps.db, query.limit) }),
  });

  app.get('/v1/openapi.json', { config: { public: true } }, async () =>
    openApiDocument({ title: 'understudy API', version: deps.version }),
  );
}
