/**
 * The console's switches on their own (`understudy switch`, from the CLI or through the API): the
 * journal's recent switches, and one switch's steps, phases and the service's traffic during it.
 */
import type { StoredEvent } from '../../events/index.ts';
import type { SwitchRecord } from '../../switch/index.ts';
import { html, type Html } from './html.ts';
import { stateBadge, trafficSummary } from './sections.ts';

export function switchesSection(switches: SwitchRecord[]): Html {
  return html`<section id="switches" aria-labelledby="switches-h" data-refresh="/ui/part/switches">
    <h2 id="switches-h">Switches</h2>
    ${
      switches.length === 0
        ? html`<p>No switch yet.</p>`
        : html`<table>
            <thead>
              <tr>
                <th scope="col">Switch</th>
                <th scope="col">From → to</th>
                <th scope="col">Method</th>
                <th scope="col">State</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              ${switches.map(
                (s) =>
                  html`<tr>
                    <td><a href="/switches/${s.id}">${s.id}</a></td>
                    <td>${s.plan.from.lc} → ${s.plan.to.lc}</td>
                    <td>${s.plan.method}</td>
                    <td>${stateBadge(s.state)}</td>
                    <td>
                      <time datetime="${s.startedAt}">${s.startedAt.slice(0, 19).replace('T', ' ')}</time>
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

/** One switch: its journal steps, the phases reported as events, the traffic sampled during it. */
export function switchSection(record: SwitchRecord, events: StoredEvent[]): Html {
  const traffic = events.filter((e) => e.type === 'traffic');
  return html`<section
    id="switch"
    aria-labelledby="switch-h"
    data-switch="${record.id}"
    data-from="${record.plan.from.lc}"
    data-to="${record.plan.to.lc}"
    data-refresh="/ui/part/switch/${record.id}"
  >
    <h1 id="switch-h">Switch ${record.id}</h1>
    <p>
      <strong>${record.plan.from.lc}</strong> → <strong>${record.plan.to.lc}</strong> by
      ${record.plan.method}, service ${record.plan.service.address} port ${record.plan.service.port} ·
      <span id="switch-state">${stateBadge(record.state)}</span>
    </p>
    ${record.error ? html`<p class="err" role="alert">${record.error.split('\n')[0]}</p>` : ''}
    <ol class="timeline" id="switch-steps" aria-label="steps">
      ${record.steps.map(
        (s) =>
          html`<li class="step s-${s.state === 'done' ? 'done' : s.state}" data-step="${s.name}">
            <span class="dot" aria-hidden="true"></span><span class="name">${s.name}</span>
            <span class="state">${s.state}</span>${s.error ? html`<span class="err">${s.error}</span>` : ''}
          </li>`,
      )}
    </ol>
    ${trafficSummary(traffic)}
  </section>`;
}

/** The chart's samples (time in s, requests/s, resets/s), drawn by console.js; live ones are added. */
export function trafficFigure(traffic: StoredEvent[], label: string): Html {
  return html`<figure
    id="traffic-chart"
    aria-label="${label}"
    data-samples="${JSON.stringify(
      traffic.map((e) => [
        Date.parse(e.at) / 1000,
        (e.data as { requestsPerSecond: number }).requestsPerSecond,
        (e.data as { resetsPerSecond: number }).resetsPerSecond,
      ]),
    )}"
  ></figure>`;
}
