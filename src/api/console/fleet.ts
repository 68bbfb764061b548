/**
 * The console's fleet pages, when the daemon runs next to a control plane: `/fleet` lists the
 * rollouts (state, reason, work by state) and the enrolled hosts (last heartbeat, open work);
 * the compliance of every LC (with CSV and JSON exports); `/fleet/rollouts/:id` shows one rollout's waves, each target with its work, rollback and health.
 * Read-only; the same sign-in as every console page.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isUnderstudyError } from '../../core/index.ts';
import type { Principal } from '../auth.ts';
import type {
  FleetHost,
  FleetLcCompliance,
  FleetReader,
  FleetRolloutDetail,
  FleetRolloutSummary,
} from '../fleet-reader.ts';
import { html, type Html } from './html.ts';
import { page } from './layout.ts';

const badge = (state: string | null): Html =>
  state ? html`<span class="badge s-${state}">${state}</span>` : html`<span>not dispatched</span>`;

const workCounts = (work: FleetRolloutSummary['work']): string =>
  Object.entries(work)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ') || 'none yet';

export function rolloutsSection(rollouts: readonly FleetRolloutSummary[]): Html {
  return html`<section id="fleet-rollouts" aria-labelledby="fleet-rollouts-h">
    <h2 id="fleet-rollouts-h">Rollouts</h2>
    ${
      rollouts.length === 0
        ? html`<p>
            No rollout yet: <code>understudy control rollout create SPEC.json</code> or
            <code>POST /v1/fleet/rollouts</code> makes one.
          </p>`
        : html`<table>
            <thead>
              <tr>
                <th scope="col">Rollout</th>
                <th scope="col">State</th>
                <th scope="col">Patches</th>
                <th scope="col">Waves</th>
                <th scope="col">LCs</th>
                <th scope="col">Work</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              ${rollouts.map(
                (r) =>
                  html`<tr>
                    <td><a href="/fleet/rollouts/${r.id}">${r.id} ${r.name}</a></td>
                    <td>${badge(r.state)}</td>
                    <td>${r.patchSet.join(', ')}</td>
                    <td>${r.waves}</td>
                    <td>${r.targets}</td>
                    <td>${workCounts(r.work)}</td>
                    <td>${r.reason ?? ''}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

export function hostsSection(hosts: readonly FleetHost[]): Html {
  return html`<section id="fleet-hosts" aria-labelledby="fleet-hosts-h">
    <h2 id="fleet-hosts-h">Hosts</h2>
    <table>
      <thead>
        <tr>
          <th scope="col">Host</th>
          <th scope="col">Enrolled</th>
          <th scope="col">Last seen</th>
          <th scope="col">LCs</th>
          <th scope="col">Open work</th>
        </tr>
      </thead>
      <tbody>
        ${hosts.map(
          (h) =>
            html`<tr>
              <td>${h.id} ${h.revokedAt ? badge('revoked') : ''}</td>
              <td>${h.enrolledAt ?? 'not yet'}</td>
              <td>${h.lastSeen ?? 'never'}</td>
              <td>${h.lcs}</td>
              <td>${h.openWork}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

export function complianceSection(lcs: readonly FleetLcCompliance[]): Html {
  return html`<section id="fleet-compliance" aria-labelledby="fleet-compliance-h">
    <h2 id="fleet-compliance-h">Compliance</h2>
    <p>
      Export: <a href="/v1/fleet/compliance?format=csv&amp;by=lc">CSV per LC</a> ·
      <a href="/v1/fleet/compliance?format=csv&amp;by=group">CSV per group</a> ·
      <a href="/v1/fleet/compliance">JSON</a>
    </p>
    <table>
      <thead>
        <tr>
          <th scope="col">Host</th>
          <th scope="col">LC</th>
          <th scope="col">Group</th>
          <th scope="col">Pending security updates (age in days)</th>
          <th scope="col">Last run</th>
          <th scope="col">Days since last patch</th>
          <th scope="col">Last health</th>
        </tr>
      </thead>
      <tbody>
        ${lcs.map(
          (c) =>
            html`<tr>
              <td>${c.host}</td>
              <td>${c.lc}</td>
              <td>${c.group}</td>
              <td>${c.pendingSecurity.map((p) => `${p.name} (${p.ageDays})`).join(', ') || 'none'}</td>
              <td>${c.lastRunResult ? badge(c.lastRunResult) : 'never'}</td>
              <td>${c.daysSinceLastPatch ?? 'never patched'}</td>
              <td>${c.lastHealth ? badge(c.lastHealth.healthy ? 'healthy' : 'failing') : ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

export function rolloutSection(r: FleetRolloutDetail): Html {
  return html`<section id="fleet-rollout" aria-labelledby="fleet-rollout-h">
    <h1 id="fleet-rollout-h">Rollout ${r.id} ${r.name} ${badge(r.state)}</h1>
    <p>
      Patches: ${r.patchSet.join(', ')} · ${r.targets} LCs in ${r.waves} waves
      ${r.reason ? html`· ${r.reason}` : ''}
    </p>
    ${r.wavesDetail.map(
      (w) =>
        html`<table class="wave">
          <caption>
            ${w.name} ${badge(w.state)}
          </caption>
          <thead>
            <tr>
              <th scope="col">Host</th>
              <th scope="col">LC</th>
              <th scope="col">Group</th>
              <th scope="col">Patch</th>
              <th scope="col">Reported unhealthy</th>
              <th scope="col">Rollback</th>
              <th scope="col">Finished</th>
            </tr>
          </thead>
          <tbody>
            ${w.targets.map(
              (t) =>
                html`<tr>
                  <td>${t.host}</td>
                  <td>${t.lc}</td>
                  <td>${t.group}</td>
                  <td>${badge(t.state)}</td>
                  <td>${t.unhealthy ? badge('failing') : ''}</td>
                  <td>${t.rollback ? badge(t.rollback) : ''}</td>
                  <td>${t.finishedAt ?? ''}</td>
                </tr>`,
            )}
          </tbody>
        </table>`,
    )}
    ${historySection(r.history)}
  </section>`;
}

/** The rollout's record: who did what to it, allowed or refused. */
function historySection(history: FleetRolloutDetail['history']): Html {
  if (history.length === 0) return html``;
  return html`<table class="history">
    <caption>
      Record
    </caption>
    <thead>
      <tr>
        <th scope="col">When</th>
        <th scope="col">Who</th>
        <th scope="col">Action</th>
        <th scope="col">Outcome</th>
        <th scope="col">Detail</th>
      </tr>
    </thead>
    <tbody>
      ${history.map(
        (h) =>
          html`<tr>
            <td>${h.at}</td>
            <td>${h.actor}</td>
            <td>${h.action}</td>
            <td>${badge(h.outcome)}</td>
            <td>
              ${Object.entries(h.detail)
                .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
                .join(', ')}
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export interface FleetConsoleDeps {
  fleet: FleetReader;
  /** The signed-in operator, or null (the console's session check). */
  session: (request: FastifyRequest) => Principal | null;
  send: (reply: FastifyReply, body: Html, status?: number) => FastifyReply;
}

export function fleetConsoleRoutes(app: FastifyInstance, deps: FleetConsoleDeps): void {
  const signedIn =
    (fn: (request: FastifyRequest, reply: FastifyReply, principal: Principal) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      const principal = deps.session(request);
      if (!principal) return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
      return fn(request, reply, principal);
    };
  app.get(
    '/fleet',
    signedIn(async (_request, reply, principal) => {
      const [rollouts, hosts, compliance] = await Promise.all([
        deps.fleet.rollouts(),
        deps.fleet.hosts(),
        deps.fleet.compliance(),
      ]);
      return deps.send(
        reply,
        page({
          title: 'Fleet',
          principal,
          live: false,
          fleet: true,
          body: html`<h1>Fleet</h1>
            ${rolloutsSection(rollouts)} ${hostsSection(hosts)} ${complianceSection(compliance.lcs)}`,
        }),
      );
    }),
  );
  app.get(
    '/fleet/rollouts/:id',
    signedIn(async (request, reply, principal) => {
      const id = Number((request.params as { id: string }).id);
      try {
        const rollout = await deps.fleet.rollout(id);
        return deps.send(
          reply,
          page({
            title: `Rollout ${rollout.id}`,
            principal,
            live: false,
            fleet: true,
            body: rolloutSection(rollout),
          }),
        );
      } catch (error) {
        if (!isUnderstudyError(error) || error.code !== 'FLEET_NOT_FOUND') throw error;
        return deps.send(
          reply,
          page({
            title: 'Not found',
            principal,
            live: false,
            fleet: true,
            body: html`<section role="alert">
              <h1>No rollout ${String(id)}</h1>
              <p><a href="/fleet">Fleet</a></p>
            </section>`,
          }),
          404,
        );
      }
    }),
  );
}
