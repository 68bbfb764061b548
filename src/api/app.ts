/**
 * The daemon's HTTP API (fastify), versioned under /v1. Every route needs a bearer token (or the
 * console's session cookie) except /v1/health, /v1/openapi.json and the signed approval links (their
 * signature authenticates them); a read-only token may only GET. Every change is audited.
 * Errors answer `{statusCode, code, error, message, hint}` with the status the code calls for.
 */
import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import {
  UnderstudyError,
  isUnderstudyError,
  serializeRequest as serializeRequestLine,
  type ErrorCode,
  type Logger,
} from '../core/index.ts';
import { ensureSchemas, type Db } from '../store/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import { EventLog, eventsSchema } from '../events/index.ts';
import { allSchemas } from '../app/index.ts';
import type { Monitor, ResolvedMonitorConfig } from '../monitor/index.ts';
import { authenticate, bearerToken, type Principal } from './auth.ts';
import { auditableBody, recordAudit } from './audit.ts';
import { apiSchema } from './schema.ts';
import { createOperations, type Operations } from './operations.ts';
import { inventoryRoutes } from './routes/inventory.ts';
import { patchRoutes } from './routes/patches.ts';
import { runRoutes } from './routes/runs.ts';
import { applyApproval, monitorRoutes, verifyCodeApproval } from './routes/monitor.ts';
import { eventRoutes } from './routes/events.ts';
import { lcAdminRoutes } from './routes/lc-admin.ts';
import { adminRoutes } from './routes/admin.ts';
import { hostAdminRoutes } from './routes/host-admin.ts';
import { consoleRoutes } from './console/routes.ts';
import { fleetControlRoutes, fleetRoutes } from './routes/fleet.ts';
import type { FleetControl, FleetReader } from './fleet-reader.ts';
import { fleetConsoleRoutes } from './console/fleet.ts';

export interface ApiDeps {
  db: Db;
  catalogue: Catalogue;
  monitor: Monitor;
  config: ResolvedMonitorConfig;
  logger: Logger;
  /** Default: the event log of `db`. */
  events?: EventLog;
  /** Default: the operations over `db` with no host (reads work, LC changes and runs answer 409). */
  operations?: Operations;
  now?: () => Date;
  /** The fleet's control plane, when this daemon runs next to one: /v1/fleet/… and /fleet pages. */
  fleet?: FleetReader;
  /** Steering the fleet's rollouts (POST /v1/fleet/…), next to `fleet`. */
  fleetControl?: FleetControl;
}

/** The name of the console's session cookie; it holds an API token, HttpOnly and SameSite=Strict. */
export const sessionCookie = 'understudy_token';

const exact: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  LC_NAME_INVALID: 400,
  ADDRESS_INVALID: 400,
  IMAGE_UNKNOWN: 400,
  SWITCH_METHOD_UNKNOWN: 400,
  SWITCH_PLAN_INVALID: 400,
  SWITCH_ADDRESS_NOT_HELD: 409,
  SWITCH_ADDRESS_CONFLICT: 409,
  SWITCH_STANDBY_UNHEALTHY: 409,
  PATCH_HASH_MISMATCH: 400,
  PATCH_FILE_INVALID: 400,
  PATCH_TOO_LARGE: 413,
  SERVICE_INVALID: 400,
  DRIVER_UNKNOWN: 400,
  DRIVER_RETIRED: 400,
  API_UNAUTHORIZED: 401,
  API_FORBIDDEN: 403,
  APPROVAL_REJECTED: 403,
  EXEC_NOT_FOUND: 500,
  CONFIG_NOT_FOUND: 500,
  API_NOT_AVAILABLE: 503,
  HOST_NOT_INITIALISED: 409,
  HOST_CONFLICT: 409,
  HOST_BUSY: 409,
  LC_RUNNING: 409,
  LC_NOT_RUNNING: 409,
  RESOURCES_EXCEEDED: 409,
  RUN_NOTHING_TO_DO: 409,
  RUN_NO_STANDBY: 409,
  RUN_PRECONDITION: 409,
  RUN_NOT_SWITCHED: 409,
  RUN_NOT_CANCELLABLE: 409,
  DPKG_STATUS_INVALID: 409,
  UPDATE_PACKAGE_NOT_IN_FEED: 409,
  UPDATE_DEPENDENCY_UNSATISFIABLE: 409,
  FLEET_ROLLOUT_INVALID: 400,
  FLEET_ROLLOUT_STATE: 409,
  FEED_UNREACHABLE: 502,
  FEED_INDEX_INVALID: 502,
  FEED_SIGNATURE_INVALID: 502,
  FEED_REPLAY: 502,
  FEED_DATE_INVALID: 502,
  STORE_LOCKED: 409,
};

/** The HTTP status of an error code: a few by name, then by the code's ending. */
export function httpStatusOf(code: ErrorCode): number {
  const status = exact[code];
  if (status) return status;
  if (code.endsWith('_NOT_FOUND')) return 404;
  if (code.endsWith('_EXISTS') || code.endsWith('_BUSY')) return 409;
  return 500;
}

const reasonPhrase: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

const version = (() => {
  try {
    const pkg = path.resolve(import.meta.dirname, '../../package.json');
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** The token a request presents: the Authorization header, else the console's session cookie. */
export function presentedToken(request: FastifyRequest): string | undefined {
  const fromHeader = bearerToken(request.headers.authorization);
  if (fromHeader) return fromHeader;
  const cookie = request.headers.cookie ?? '';
  for (const part of cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === sessionCookie) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const now = deps.now ?? (() => new Date());
  ensureSchemas(deps.db, [...allSchemas, apiSchema, eventsSchema]);
  const events = deps.events ?? new EventLog(deps.db, now);
  const stateDir = path.dirname(deps.db.name);
  const operations =
    deps.operations ??
    createOperations({
      manager: { stateDir, db: deps.db },
      catalogue: deps.catalogue,
      events,
      logger: deps.logger,
    });
  const app: FastifyInstance = Fastify({
    // Request lines in the log carry the URL with secret query parameters redacted, never headers.
    loggerInstance: deps.logger.child({}, { serializers: { req: serializeRequestLine } }),
    bodyLimit: 1024 * 1024,
  }) as unknown as FastifyInstance;

  app.setErrorHandler((error, request, reply) => {
    if (isUnderstudyError(error)) {
      const statusCode = httpStatusOf(error.code);
      if (statusCode >= 500) request.log.error({ err: error }, 'request failed');
      return reply.status(statusCode).send({
        statusCode,
        code: error.code,
        error: reasonPhrase[statusCode] ?? 'Error',
        message: error.message,
        hint: error.hint,
        ...(Object.keys(error.details).length ? { details: error.details } : {}),
      });
    }
    const e = error as { statusCode?: number; message?: string };
    if (e.statusCode && e.statusCode < 500) {
      return reply.status(e.statusCode).send({
        statusCode: e.statusCode,
        code: 'INVALID_ARGUMENT',
        error: reasonPhrase[e.statusCode] ?? 'Error',
        message: e.message ?? 'bad request',
        hint: 'See /v1/openapi.json for the request schema.',
      });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({
      statusCode: 500,
      code: 'INTERNAL',
      error: 'Internal Server Error',
      message: 'internal error',
      hint: 'A bug in understudy: the daemon log has the stack.',
    });
  });

  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public || !request.url.startsWith('/v1/')) return;
    const principal = authenticate(deps.db, presentedToken(request), deps.config.api.token);
    if (!principal)
      throw new UnderstudyError('API_UNAUTHORIZED', 'Missing, wrong or revoked API token', {
        hint: 'Send Authorization: Bearer <token>; `understudy token create` makes one, and `serve` writes the first to <state-dir>/api-token.',
      });
    request.principal = principal;
    if ((config.scope ?? 'admin') === 'admin' && principal.scope !== 'admin')
      throw new UnderstudyError(
        'API_FORBIDDEN',
        `${request.method} ${request.routeOptions.url ?? request.url} needs the admin scope; the token of ${principal.operator} is read-only`,
      );
  });

  // Every change (and every refused attempt at one) goes to the audit log and the event stream.
  app.addHook('onResponse', async (request, reply) => {
    if (request.method === 'GET' || request.method === 'HEAD' || !request.url.startsWith('/v1/')) return;
    const config = request.routeOptions.config;
    const principal: Principal | undefined = request.principal;
    let target: string | undefined;
    try {
      target = config.auditTarget?.({ params: request.params, body: request.body ?? {} });
    } catch {
      target = undefined;
    }
    const entry = recordAudit(deps.db, {
      at: now().toISOString(),
      operator: principal?.operator ?? (config.public ? 'approval-link' : 'anonymous'),
      tokenId: principal?.tokenId ?? null,
      action: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
      target: target ?? null,
      status: reply.statusCode,
      details: { body: auditableBody(request.body) },
    });
    events.append({
      type: 'audit',
      data: {
        id: entry.id,
        operator: entry.operator,
        action: entry.action,
        target: entry.target,
        status: entry.status,
      },
    });
  });

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  // The monitor's polls (scheduled or asked for) and mails go to the event stream as they happen.
  const unsubscribeMonitor = deps.monitor.subscribe((event) => {
    const { kind, ...data } = event;
    events.append({
      type: kind === 'mail.sent' ? 'monitor.mail' : 'monitor.poll',
      data: { phase: kind, ...data },
    });
  });
  app.addHook('onClose', async () => unsubscribeMonitor());

  app.get('/v1/health', { config: { public: true } }, async () => ({ ok: true }));
  inventoryRoutes(app, operations);
  lcAdminRoutes(app, operations);
  adminRoutes(app, { db: deps.db });
  hostAdminRoutes(app, operations);
  patchRoutes(app, operations, deps.catalogue);
  runRoutes(app, operations);
  const monitorDeps = {
    db: deps.db,
    monitor: deps.monitor,
    config: deps.config,
    events,
    logger: deps.logger,
    now,
  };
  monitorRoutes(app, monitorDeps);
  eventRoutes(app, { db: deps.db, events, version });
  consoleRoutes(app, {
    db: deps.db,
    config: deps.config,
    now,
    events,
    approve: (input, operator) =>
      applyApproval(monitorDeps, verifyCodeApproval(monitorDeps, input), 'api', operator),
    catalogue: deps.catalogue,
    operations,
    sessionCookie,
    presentedToken,
    fleet: deps.fleet !== undefined,
  });
  if (deps.fleet) {
    fleetRoutes(app, deps.fleet);
    if (deps.fleetControl) fleetControlRoutes(app, { control: deps.fleetControl, config: deps.config });
    fleetConsoleRoutes(app, {
      fleet: deps.fleet,
      session: (request) => authenticate(deps.db, presentedToken(request), deps.config.api.token),
      send: (reply, body, status = 200) =>
        reply
          .status(status)
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(body.text),
    });
  }

  return app;
}
