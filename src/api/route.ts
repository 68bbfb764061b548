/**
 * How a route is declared: method, URL, the scope it needs, zod schemas for its params, query and
 * body, and a handler that gets the parsed input. `addRoute` registers it with fastify, validates
 * the input (INVALID_ARGUMENT naming the field on failure) and records it for the OpenAPI document.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { UnderstudyError } from '../core/index.ts';
import type { Principal, TokenScope } from './auth.ts';
import { errorBody } from './contracts.ts';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteDef<P = unknown, Q = unknown, B = unknown> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  summary: string;
  tag: string;
  /** Default: `read` for GET, `admin` for every change. */
  scope?: TokenScope;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** 200 unless given (202 for work that goes on in the background). */
  status?: number;
  /** The thing a change acts on, for the audit log. */
  target?: (input: { params: P; body: B }) => string | undefined;
  bodyLimit?: number;
  handler: (input: RouteInput<P, Q, B>) => Promise<unknown>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without a token. */
    public?: boolean;
    /** The scope the route needs. */
    scope?: TokenScope;
    /** Audit target for changes. */
    auditTarget?: (input: { params: unknown; body: unknown }) => string | undefined;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return value as T;
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.length ? `${where}.${issue.path.join('.')}` : where;
  throw new UnderstudyError('INVALID_ARGUMENT', `${field}: ${issue?.message ?? 'invalid'}`, {
    hint: 'See /v1/openapi.json for the request schema.',
    details: {
      field,
      issues: result.error.issues.slice(0, 5).map((i) => ({ path: i.path, message: i.message })),
    },
  });
}

export const registeredRoutes: RouteDef<never, never, never>[] = [];

export function addRoute<P, Q, B>(app: FastifyInstance, def: RouteDef<P, Q, B>): void {
  const scope = def.scope ?? (def.method === 'GET' ? 'read' : 'admin');
  if (!registeredRoutes.some((r) => r.method === def.method && r.url === def.url))
    registeredRoutes.push(def as unknown as RouteDef<never, never, never>);
  app.route({
    method: def.method,
    url: def.url,
    bodyLimit: def.bodyLimit,
    config: {
      scope,
      auditTarget: def.target as
        ((input: { params: unknown; body: unknown }) => string | undefined) | undefined,
    },
    handler: async (request, reply) => {
      const params = parse(def.params, request.params, 'params');
      const query = parse(def.query, request.query, 'query');
      const body = parse(def.body, request.body, 'body');
      const principal = request.principal as Principal;
      const result = await def.handler({ params, query, body, principal, request, reply });
      if (reply.sent) return reply;
      if (def.status) reply.status(def.status);
      return result;
    },
  });
}

const toSchema = (schema: z.ZodType | undefined): Record<string, unknown> | undefined => {
  if (!schema) return undefined;
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json;
};

/** The OpenAPI 3.1 document of every registered route. */
export function openApiDocument(info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of registeredRoutes) {
    const url = r.url.replace(/:(\w+)/g, '{$1}');
    const scope = r.scope ?? (r.method === 'GET' ? 'read' : 'admin');
    const parameters: unknown[] = [];
    for (const [where, schema] of [
      ['path', r.params],
      ['query', r.query],
    ] as const) {
      const json = toSchema(schema);
      const props = (json?.properties ?? {}) as Record<string, unknown>;
      const required = new Set((json?.required ?? []) as string[]);
      for (const [key, value] of Object.entries(props))
        parameters.push({
          name: key,
          in: where,
          required: where === 'path' || required.has(key),
          schema: value,
        });
    }
    const body = toSchema(r.body);
    (paths[url] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      'x-scope': scope,
      security: [{ bearer: [] }],
      parameters,
      ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
      responses: {
        [String(r.status ?? 200)]: { description: 'success' },
        default: {
          description: 'an error of docs/errors.md',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: toSchema(errorBody) },
    },
  };
}
