/**
 * The operator's console at `/`: server-rendered pages over the same operations as the API, readable
 * without JavaScript; with it, the page follows `/v1/events` and refreshes what changed. Sign-in takes
 * an API token and keeps it in an HttpOnly, SameSite=Strict cookie; every form carries a token derived
 * from it (CSRF). Changes need the admin scope and are audited like the API's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UnderstudyError, isUnderstudyError } from '../../core/index.ts';
import type { Db } from '../../store/index.ts';
import type { Catalogue, Patch } from '../../catalogue/index.ts';
import type { LcView } from '../../app/index.ts';
import type { EventLog } from '../../events/index.ts';
import { listChallenges } from '../../mail/index.ts';
import type { ResolvedMonitorConfig } from '../../monitor/index.ts';
import type { SwitchMethod } from '../../switch/index.ts';
import { authenticate, type Principal } from '../auth.ts';
import { listAudit, recordAudit } from '../audit.ts';
import type { Operations } from '../operations.ts';
import { html, type Html } from './html.ts';
import { page as framedPage } from './layout.ts';
import { switchSection, switchesSection, trafficFigure } from './switches.ts';
import { lcPageSection } from './lc-page.ts';
import {
  approvalsSection,
  auditSection,
  monitorSection,
  hostSection,
  lcsSection,
  runSection,
  runsSection,
  startRunForm,
  type LcRow,
} from './sections.ts';

export interface ConsoleDeps {
  db: Db;
  config: ResolvedMonitorConfig;
  now: () => Date;
  /** Verifies an approval with the administrator's code and applies it (the API's rules). */
  approve: (
    input: { admin: string; challenge: string; decision: string; code: string },
    operator: string,
  ) => Promise<unknown>;
  catalogue: Catalogue;
  operations: Operations;
  events: EventLog;
  sessionCookie: string;
  presentedToken: (request: FastifyRequest) => string | undefined;
  /** A fleet control plane is configured: the navigation links /fleet. */
  fleet?: boolean;
}

const nodeModules = path.resolve(import.meta.dirname, '../../../node_modules');
const assetFiles: Record<string, { file: string; type: string }> = {
  'htmx.min.js': { file: path.join(nodeModules, 'htmx.org/dist/htmx.min.js'), type: 'text/javascript' },
  'uPlot.iife.min.js': {
    file: path.join(nodeModules, 'uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript',
  },
  'uPlot.min.css': { file: path.join(nodeModules, 'uplot/dist/uPlot.min.css'), type: 'text/css' },
  'console.js': { file: path.join(import.meta.dirname, 'assets/console.js'), type: 'text/javascript' },
  'console.css': { file: path.join(import.meta.dirname, 'assets/console.css'), type: 'text/css' },
};

const csrfOf = (token: string): string =>
  createHash('sha256').update(`csrf:${token}`).digest('hex').slice(0, 32);

export function consoleRoutes(app: FastifyInstance, deps: ConsoleDeps): void {
  const ops = deps.operations;
  const page = (options: Parameters<typeof framedPage>[0]): Html =>
    framedPage({ ...options, fleet: deps.fleet === true });
  const session = (request: FastifyRequest): { principal: Principal; token: string } | null => {
    const token = deps.presentedToken(request);
    const principal = authenticate(deps.db, token, deps.config.api.token);
    return principal && token ? { principal, token } : null;
  };
  const send = (reply: FastifyReply, body: Html, status = 200): FastifyReply =>
    reply.status(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body.text);

  /** Runs `fn` for a signed-in operator, else sends the sign-in page. */
  const signedIn =
    (
      fn: (
        request: FastifyRequest,
        reply: FastifyReply,
        s: { principal: Principal; token: string },
      ) => Promise<unknown>,
    ) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      const s = session(request);
      if (!s) return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
      return fn(request, reply, s);
    };

  /** A change from a form: admin scope, the form's CSRF token, audited; errors shown on a page. */
  const change = (
    action: string,
    fn: (body: Record<string, string>, request: FastifyRequest, principal: Principal) => Promise<string>,
  ) =>
    signedIn(async (request, reply, s) => {
      const body = (request.body ?? {}) as Record<string, string>;
      let status = 303;
      let location = '/';
      let failure: UnderstudyError | null = null;
      try {
        if (body.csrf !== csrfOf(s.token))
          throw new UnderstudyError('API_FORBIDDEN', 'The form is stale or was not sent by this console', {
            hint: 'Reload the page and send the form again.',
          });
        if (s.principal.scope !== 'admin')
          throw new UnderstudyError(
            'API_FORBIDDEN',
            `${action} needs the admin scope; ${s.principal.operator} is read-only`,
          );
        location = await fn(body, request, s.principal);
      } catch (error) {
        if (!isUnderstudyError(error)) throw error;
        failure = error;
        status = error.code === 'API_FORBIDDEN' || error.code === 'APPROVAL_REJECTED' ? 403 : 409;
      }
      const { csrf: _csrf, code: _code, ...kept } = body;
      recordAudit(deps.db, {
        at: deps.now().toISOString(),
        operator: s.principal.operator,
        tokenId: s.principal.tokenId,
        action: `console ${action}`,
        target: body.lc ?? body.challenge?.slice(0, 12) ?? null,
        status: failure ? status : 200,
        details: { body: kept, ...(failure ? { code: failure.code } : {}) },
      });
      if (!failure) return reply.redirect(location, 303);
      return send(
        reply,
        page({
          title: 'Not done',
          principal: s.principal,
          body: html`<section role="alert">
            <h1>Not done: ${failure.code}</h1>
            <p>${failure.message}</p>
            <p>${failure.hint}</p>
            <p>
              <a href="${request.headers.referer?.startsWith('/') ? request.headers.referer : '/'}">Back</a>
            </p>
          </section>`,
        }),
        status,
      );
    });

  const lcRows = async (): Promise<LcRow[]> => {
    const lcs = await ops.lcs();
    const patches = deps.catalogue.listPatches();
    return Promise.all(lcs.map((lc) => lcRow(lc, patches)));
  };
  async function lcRow(lc: LcView, patches: Patch[]): Promise<LcRow> {
    const states = new Map(deps.catalogue.lcStates({ lc: lc.name }).map((s) => [s.patch, s]));
    const pending = patches
      .map((p) => ({ ...p, state: states.get(p.name) ?? null }))
      .filter((p) => !p.state?.appliedAt)
      .sort(
        (a, b) =>
          Number(b.categories.includes('security')) - Number(a.categories.includes('security')) ||
          a.name.localeCompare(b.name),
      );
    const health = lc.role === 'active' ? (await ops.serviceHealth(lc.name, {})).state : 'unknown';
    return { lc, health, pending };
  }
  /** One LC's page section: LC_NOT_FOUND for an unknown name. */
  const lcPart = async (name: string): Promise<Html> => {
    const lc = await ops.lc(name);
    const health = deps.events
      .latest(500, { type: 'health' })
      .filter((e) => e.lc === name)
      .slice(-20);
    return lcPageSection(
      await lcRow(lc, deps.catalogue.listPatches()),
      // The runs that patched it, and those it stood in for.
      ops
        .runs({})
        .filter((r) => r.lc === name || r.standby === name)
        .slice(0, 20),
      health,
    );
  };

  const parts: Record<string, (csrf: string | null, id?: string) => Promise<Html>> = {
    host: async () => hostSection(await ops.host()),
    lcs: async () => lcsSection(await lcRows()),
    lc: async (_csrf, id) => lcPart(id ?? ''),
    runs: async () => runsSection(ops.runs({}).slice(0, 20)),
    approvals: async (csrf) => approvalsSection(listChallenges(deps.db, { state: 'open' }), csrf),
    audit: async () => auditSection(listAudit(deps.db, 50)),
    monitor: async () => monitorSection(deps.events.latest(20, { types: ['monitor.poll', 'monitor.mail'] })),
    switches: async () => switchesSection(ops.switches().slice(0, 20)),
    switch: async (_csrf, id) =>
      switchSection(ops.switchRecord(id ?? ''), deps.events.after(0, { switchId: id, limit: 5000 })),
    run: async (csrf, id) => {
      const events = deps.events.after(0, { runId: id, limit: 5000 });
      return runSection(
        ops.run(id ?? ''),
        events.filter((e) => e.type === 'run.note'),
        csrf,
        events.filter((e) => e.type === 'traffic'),
      );
    },
  };

  for (const [name, asset] of Object.entries(assetFiles)) {
    app.get(`/assets/${name}`, { config: { public: true } }, async (_request, reply) =>
      reply
        .type(asset.type)
        .header('cache-control', 'public, max-age=3600')
        .send(fs.readFileSync(asset.file)),
    );
  }

  app.get('/login', { config: { public: true } }, async (request, reply) => {
    const next = (request.query as { next?: string }).next ?? '/';
    return send(
      reply,
      page({
        title: 'Sign in',
        live: false,
        body: html`<section aria-labelledby="login-h">
          <h1 id="login-h">Sign in</h1>
          <form method="post" action="/login" class="grid">
            <input
              type="hidden"
              name="next"
              value="${next.startsWith('/') && !next.startsWith('//') ? next : '/'}"
            />
            <label for="token">API token</label
            ><input id="token" name="token" type="password" autocomplete="current-password" required />
            <button type="submit">Sign in</button>
          </form>
          <p>
            The first admin token is in <code>&lt;state-dir&gt;/api-token</code>;
            <code>understudy token create</code> makes more.
          </p>
        </section>`,
      }),
    );
  });

  app.post('/login', { config: { public: true } }, async (request, reply) => {
    const body = (request.body ?? {}) as { token?: string; next?: string };
    const principal = authenticate(deps.db, body.token, deps.config.api.token);
    if (!principal || !body.token)
      return send(
        reply,
        page({
          title: 'Sign in',
          live: false,
          body: html`<section role="alert">
            <h1>Sign in refused</h1>
            <p>The token is wrong or revoked.</p>
            <p><a href="/login">Try again</a></p>
          </section>`,
        }),
        401,
      );
    const next = body.next?.startsWith('/') && !body.next.startsWith('//') ? body.next : '/';
    return reply
      .header(
        'set-cookie',
        `${deps.sessionCookie}=${encodeURIComponent(body.token)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200`,
      )
      .redirect(next, 303);
  });

  app.post('/logout', { config: { public: true } }, async (_request, reply) =>
    reply
      .header('set-cookie', `${deps.sessionCookie}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`)
      .redirect('/login', 303),
  );

  app.get(
    '/',
    { config: { public: true } },
    signedIn(async (_request, reply, s) => {
      const csrf = s.principal.scope === 'admin' ? csrfOf(s.token) : null;
      const after = deps.events.lastId();
      const lcs = await ops.lcs();
      return send(
        reply,
        page({
          title: 'Overview',
          principal: s.principal,
          after,
          body: html`<h1>Overview</h1>
            ${await parts.host?.(csrf)} ${await parts.lcs?.(csrf)} ${csrf ? startRunForm(lcs, csrf) : ''}
            ${await parts.runs?.(csrf)} ${await parts.approvals?.(csrf)} ${await parts.monitor?.(csrf)}`,
        }),
      );
    }),
  );

  for (const [url, part, title] of [
    ['/runs', 'runs', 'Patch runs'],
    ['/approvals', 'approvals', 'Approvals'],
    ['/audit', 'audit', 'Audit log'],
    ['/monitor', 'monitor', 'Patch monitor'],
    ['/switches', 'switches', 'Switches'],
  ] as const) {
    app.get(
      url,
      { config: { public: true } },
      signedIn(async (_request, reply, s) => {
        const csrf = s.principal.scope === 'admin' ? csrfOf(s.token) : null;
        const after = deps.events.lastId();
        return send(
          reply,
          page({
            title,
            principal: s.principal,
            after,
            body: html`<h1>${title}</h1>
              ${await parts[part]?.(csrf)}`,
          }),
        );
      }),
    );
  }

  app.get(
    '/lcs/:name',
    { config: { public: true } },
    signedIn(async (request, reply, s) => {
      const name = (request.params as { name: string }).name;
      try {
        return send(
          reply,
          page({
            title: `LC ${name}`,
            principal: s.principal,
            after: deps.events.lastId(),
            body: await lcPart(name),
          }),
        );
      } catch (error) {
        if (!isUnderstudyError(error, 'LC_NOT_FOUND')) throw error;
        return send(
          reply,
          page({ title: 'No such LC', principal: s.principal, body: html`<h1>No LC ${name}</h1>` }),
          404,
        );
      }
    }),
  );

  app.get(
    '/runs/:id',
    { config: { public: true } },
    signedIn(async (request, reply, s) => {
      const id = (request.params as { id: string }).id;
      const csrf = s.principal.scope === 'admin' ? csrfOf(s.token) : null;
      try {
        const after = deps.events.lastId();
        return send(
          reply,
          page({
            title: `Run ${id}`,
            principal: s.principal,
            after,
            // The chart lives outside the section so that refreshing the section keeps it.
            body: html`${await (parts.run as (c: string | null, id: string) => Promise<Html>)(csrf, id)}
              ${trafficFigure(
                deps.events.after(0, { runId: id, limit: 5000 }).filter((e) => e.type === 'traffic'),
                'requests and TCP resets per second during the run',
              )}
              <figure id="copy-chart" aria-label="copy progress over time"></figure>`,
          }),
        );
      } catch (error) {
        if (!isUnderstudyError(error, 'RUN_NOT_FOUND')) throw error;
        return send(
          reply,
          page({ title: 'No such run', principal: s.principal, body: html`<h1>No run ${id}</h1>` }),
          404,
        );
      }
    }),
  );

  app.get(
    '/ui/part/:name',
    { config: { public: true } },
    signedIn(async (request, reply, s) => {
      const name = (request.params as { name: string }).name;
      const render = parts[name];
      if (!render || name === 'run' || name === 'switch' || name === 'lc') return reply.status(404).send('');
      return send(reply, await render(s.principal.scope === 'admin' ? csrfOf(s.token) : null));
    }),
  );
  app.get(
    '/ui/part/lc/:id',
    { config: { public: true } },
    signedIn(async (request, reply) => send(reply, await lcPart((request.params as { id: string }).id))),
  );

  app.get(
    '/ui/part/run/:id',
    { config: { public: true } },
    signedIn(async (request, reply, s) =>
      send(
        reply,
        await (parts.run as (c: string | null, id: string) => Promise<Html>)(
          s.principal.scope === 'admin' ? csrfOf(s.token) : null,
          (request.params as { id: string }).id,
        ),
      ),
    ),
  );

  app.get(
    '/switches/:id',
    { config: { public: true } },
    signedIn(async (request, reply, s) => {
      const id = (request.params as { id: string }).id;
      try {
        const section = await (parts.switch as (c: null, id: string) => Promise<Html>)(null, id);
        const traffic = deps.events
          .after(0, { switchId: id, limit: 5000 })
          .filter((e) => e.type === 'traffic');
        return send(
          reply,
          page({
            title: `Switch ${id}`,
            principal: s.principal,
            after: deps.events.lastId(),
            // The chart lives outside the section so that refreshing the section keeps it.
            body: html`${section}
            ${trafficFigure(traffic, 'requests and TCP resets per second during the switch')}`,
          }),
        );
      } catch (error) {
        if (!isUnderstudyError(error, 'SWITCH_NOT_FOUND')) throw error;
        return send(
          reply,
          page({ title: 'No such switch', principal: s.principal, body: html`<h1>No switch ${id}</h1>` }),
          404,
        );
      }
    }),
  );
  app.get(
    '/ui/part/switch/:id',
    { config: { public: true } },
    signedIn(async (request, reply) =>
      send(
        reply,
        await (parts.switch as (c: null, id: string) => Promise<Html>)(
          null,
          (request.params as { id: string }).id,
        ),
      ),
    ),
  );

  app.post(
    '/ui/runs',
    { config: { public: true } },
    change('start run', async (body) => {
      const run = await ops.startRun({
        lc: body.lc ?? '',
        method: (body.method ?? 'instant') as SwitchMethod,
        skipScan: body.skipScan === 'true',
      });
      return `/runs/${run.id}`;
    }),
  );
  app.post(
    '/ui/runs/:id/cancel',
    { config: { public: true } },
    change('cancel run', async (_body, request) => {
      const id = (request.params as { id: string }).id;
      ops.cancelRun(id);
      return `/runs/${id}`;
    }),
  );
  app.post(
    '/ui/runs/:id/rollback',
    { config: { public: true } },
    change('roll back run', async (_body, request) => {
      const id = (request.params as { id: string }).id;
      await ops.rollbackRun(id);
      return `/runs/${id}`;
    }),
  );
  app.post(
    '/ui/approvals',
    { config: { public: true } },
    change('approval', async (body, _request, principal) => {
      await deps.approve(
        {
          admin: body.admin ?? '',
          challenge: body.challenge ?? '',
          decision: body.decision ?? '',
          code: (body.code ?? '').trim(),
        },
        principal.operator,
      );
      return '/approvals';
    }),
  );
}
