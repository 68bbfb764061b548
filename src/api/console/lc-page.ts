/**
 * The console's page of one LC: its state, role, resources, disks and NICs, its service's health
 * (now, and the checks runs and switches made), its pending patches (security first) and its runs.
 */
import type { StoredEvent } from '../../events/index.ts';
import type { RunRecord } from '../../run/index.ts';
import { html, type Html } from './html.ts';
import { stateBadge, type LcRow } from './sections.ts';

export function lcPageSection(row: LcRow, runs: RunRecord[], health: StoredEvent[]): Html {
  const { lc, pending } = row;
  return html`<section id="lc" aria-labelledby="lc-h" data-refresh="/ui/part/lc/${lc.name}">
    <h1 id="lc-h">Logical computer ${lc.name}</h1>
    <p>
      ${stateBadge(lc.status.state)} role <strong>${lc.role}</strong> · image ${lc.image} · driver
      ${lc.driver} · service ${stateBadge(row.health)}
    </p>
    <table>
      <caption>
        Resources
      </caption>
      <tbody>
        <tr>
          <th scope="row">CPU</th>
          <td>CPU${lc.cpus}, ${lc.cpuSharePercent}% of one CPU</td>
        </tr>
        <tr>
          <th scope="row">Memory</th>
          <td>${lc.memoryMb} MB</td>
        </tr>
        ${lc.disks.map(
          (d) =>
            html`<tr>
              <th scope="row">Disk ${d.name}</th>
              <td>${d.sizeMb} MB in pool ${d.pool}, mounted at ${d.mountPath}</td>
            </tr>`,
        )}
        ${lc.nics.map(
          (n) =>
            html`<tr>
              <th scope="row">NIC ${n.name}</th>
              <td>${n.addresses.join(' ') || 'no address'} · ${n.mac} on ${n.bridge}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h2>Pending patches</h2>
    ${
      pending.length === 0
        ? html`<p>None.</p>`
        : html`<ul class="patches">
            ${pending.map(
              (p) =>
                html`<li>
                  ${p.categories.includes('security') ? html`<span class="badge s-security">security</span> ` : ''}${p.name}
                  (${p.format})${p.state?.applyNextRun ? ' — at the next run' : ''}
                </li>`,
            )}
          </ul>`
    }
    <h2>Health checks of runs and switches</h2>
    ${
      health.length === 0
        ? html`<p>None recorded yet.</p>`
        : html`<table>
            <thead>
              <tr>
                <th scope="col">At</th>
                <th scope="col">When</th>
                <th scope="col">Check</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              ${health.map((e) => {
                const d = e.data as { phase?: string; check?: string; ok?: boolean; detail?: string };
                return html`<tr>
                  <td>${e.at.slice(0, 19).replace('T', ' ')}</td>
                  <td>
                    ${d.phase ?? ''}${e.runId ? html` of <a href="/runs/${e.runId}">${e.runId}</a>` : ''}
                  </td>
                  <td>${d.check ?? ''}</td>
                  <td>${stateBadge(d.ok ? 'healthy' : 'failing')} ${d.detail ?? ''}</td>
                </tr>`;
              })}
            </tbody>
          </table>`
    }
    <h2>Patch runs</h2>
    ${
      runs.length === 0
        ? html`<p>No patch run yet.</p>`
        : html`<ul>
            ${runs.map(
              (r) =>
                html`<li>
                  <a href="/runs/${r.id}">${r.id}</a> ${stateBadge(r.state)}
                  ${r.lc === lc.name ? html`patched, standby ${r.standby ?? '-'}` : html`stood in for ${r.lc}`},
                  ${r.options.method}, ${r.createdAt.slice(0, 19).replace('T', ' ')}
                </li>`,
            )}
          </ul>`
    }
  </section>`;
}
