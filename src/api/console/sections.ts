/** The console's sections, each rendered on its own (for live refresh) and inside the pages. */
import type { Challenge } from '../../mail/index.ts';
import type { HostStatus } from '../../host/index.ts';
import type { LcView } from '../../app/index.ts';
import type { Patch, PatchLcState } from '../../catalogue/index.ts';
import type { RunRecord, StepRecord } from '../../run/index.ts';
import type { StoredEvent } from '../../events/index.ts';
import type { AuditEntry } from '../audit.ts';
import { html, type Html } from './html.ts';

const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
const seconds = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? '' : `${(ms / 1000).toFixed(2)} s`;

/** Each step of the patch run with the seed's step number (SPEC.md §4). */
const seedSteps: Record<string, string> = {
  'find-standby': '701 find a standby',
  scan: '702 check the system disk',
  'copy-system': '703 copy the system disk',
  'copy-app': '704 copy the application disk',
  'stop-standby': '703/704 prepare the standby',
  'write-patches': '705/706 patch files, table and script',
  'boot-standby': '707 start the standby (1201–1207)',
  'reboot-standby': '708 restart the standby',
  'check-standby': '709 check the result',
  switch: 'switch the network (Fig. 13–17, 21–26)',
  'record-applied': 'record applied patches (Fig. 6)',
  watch: 'watch the patched service',
  'rollback-prepare': 'prepare the rollback',
  'rollback-presync': 'copy the data disks back',
  'rollback-switch': 'switch back',
  'rollback-finish': 'finish the rollback',
};

/**
 * The console's label of a step: the seed's label, and for a `copy-<disk>` step of a data disk beyond
 * the system and application disks the copy label with the disk's name. An unknown step keeps its name.
 */
export function stepLabel(step: string): string {
  const known = seedSteps[step];
  if (known !== undefined) return known;
  if (step.startsWith('copy-') && step.length > 'copy-'.length)
    return `704 copy the data disk ${step.slice('copy-'.length)}`;
  return step;
}

export const stateBadge = (state: string): Html => html`<span class="badge s-${state}">${state}</span>`;

export function hostSection(host: HostStatus & { capacity: { cpuCount: number; memoryMb: number } }): Html {
  if (!host.initialised)
    return html`<section id="host" aria-labelledby="host-h">
      <h2 id="host-h">Host</h2>
      <p>Not initialised: run <code>understudy host init</code>.</p>
    </section>`;
  const net = host.network;
  return html`<section id="host" aria-labelledby="host-h" data-refresh="/ui/part/host">
    <h2 id="host-h">Host</h2>
    <p>
      Bridge <strong>${net?.bridge ?? '-'}</strong> ${net?.bridgeUp ? stateBadge('up') : stateBadge('down')},
      subnet ${net?.subnet ?? '-'}, host ${net?.hostAddress ?? '-'} · ${host.capacity.cpuCount} CPUs,
      ${host.capacity.memoryMb} MB memory
    </p>
    <table>
      <caption>
        Storage pools
      </caption>
      <thead>
        <tr>
          <th scope="col">Pool</th>
          <th scope="col">Mounted at</th>
          <th scope="col">Size</th>
          <th scope="col">Free</th>
        </tr>
      </thead>
      <tbody>
        ${host.pools.map(
          (p) =>
            html`<tr>
              <td>${p.name}</td>
              <td>${p.mounted ? p.mountpoint : 'not mounted'}</td>
              <td>${gib(p.sizeBytes)}</td>
              <td>${p.usage ? gib(p.usage.freeBytes) : '-'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

export interface LcRow {
  lc: LcView;
  health: 'healthy' | 'failing' | 'unknown';
  pending: (Patch & { state: PatchLcState | null })[];
}

export function lcsSection(rows: LcRow[]): Html {
  return html`<section id="lcs" aria-labelledby="lcs-h" data-refresh="/ui/part/lcs">
    <h2 id="lcs-h">Logical computers</h2>
    ${
      rows.length === 0
        ? html`<p>No logical computers yet.</p>`
        : html`<table>
            <thead>
              <tr>
                <th scope="col">LC</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Service</th>
                <th scope="col">Resources</th>
                <th scope="col">Pending patches</th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                ({ lc, health, pending }) =>
                  html`<tr id="lc-${lc.name}">
                    <td>
                      <strong><a href="/lcs/${lc.name}">${lc.name}</a></strong>
                    </td>
                    <td>${lc.role}</td>
                    <td>${stateBadge(lc.status.state)}</td>
                    <td>${stateBadge(health)}</td>
                    <td>
                      CPU${lc.cpus}/${lc.cpuSharePercent}% · ${lc.memoryMb} MB ·
                      ${lc.nics.flatMap((n) => n.addresses).join(' ') || 'no NIC'}
                    </td>
                    <td>
                      ${
                        pending.length === 0
                          ? 'none'
                          : html`<ul class="patches">
                              ${pending.map(
                                (p) =>
                                  html`<li>
                                    ${p.categories.includes('security') ? html`<span class="badge s-security">security</span> ` : ''}${p.name}${p.state?.applyNextRun ? ' (next run)' : ''}
                                  </li>`,
                              )}
                            </ul>`
                      }
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

export function startRunForm(lcs: LcView[], csrf: string): Html {
  const active = lcs.filter((l) => l.role === 'active');
  return html`<section id="start-run" aria-labelledby="start-h">
    <h2 id="start-h">Start a patch run</h2>
    <form method="post" action="/ui/runs" class="grid">
      <input type="hidden" name="csrf" value="${csrf}" />
      <label for="run-lc">Logical computer</label>
      <select id="run-lc" name="lc" required>
        ${active.map((l) => html`<option value="${l.name}">${l.name}</option>`)}
      </select>
      <label for="run-method">Switch method</label>
      <select id="run-method" name="method">
        <option value="instant">instant</option>
        <option value="move-nic">move-nic</option>
        <option value="swap-address">swap-address</option>
      </select>
      <label for="run-skip-scan"
        ><input id="run-skip-scan" name="skipScan" type="checkbox" value="true" /> Skip the virus scan</label
      >
      <button type="submit">Start run</button>
    </form>
  </section>`;
}

export function runsSection(runs: RunRecord[]): Html {
  return html`<section id="runs" aria-labelledby="runs-h" data-refresh="/ui/part/runs">
    <h2 id="runs-h">Patch runs</h2>
    ${
      runs.length === 0
        ? html`<p>No patch runs yet.</p>`
        : html`<table>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">LC</th>
                <th scope="col">Standby</th>
                <th scope="col">State</th>
                <th scope="col">Patches</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              ${runs.map(
                (r) =>
                  html`<tr>
                    <td><a href="/runs/${r.id}">${r.id}</a></td>
                    <td>${r.lc}</td>
                    <td>${r.standby ?? '-'}</td>
                    <td>${stateBadge(r.state)}</td>
                    <td>${r.options.patches.join(', ')}</td>
                    <td>
                      <time datetime="${r.createdAt}">${r.createdAt.slice(0, 19).replace('T', ' ')}</time>
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

const stepRow = (s: StepRecord): Html =>
  html`<li id="step-${s.name}" class="step s-${s.state}" data-step="${s.name}">
    <span class="dot" aria-hidden="true"></span><span class="name">${stepLabel(s.name)}</span>
    <span class="state">${s.state}</span
    ><span class="time">${seconds(s.durationMs)}</span
    >${s.error ? html`<span class="err">${s.error.split('\n')[0]}</span>` : ''}
  </li>`;

/** The service's traffic during the run as text (the chart draws the same samples). */
export function trafficSummary(samples: StoredEvent[]): Html {
  if (samples.length === 0) return html``;
  const rates = samples.map((e) => e.data as { requestsPerSecond: number; resetsPerSecond: number });
  const lastRate = rates[rates.length - 1] as { requestsPerSecond: number; resetsPerSecond: number };
  const peak = (key: 'requestsPerSecond' | 'resetsPerSecond'): number =>
    Math.max(...rates.map((r) => r[key]));
  return html`<p id="traffic-summary">
    Service traffic, measured in the LCs (${samples.length} samples): now
    <strong>${lastRate.requestsPerSecond} requests/s</strong> and ${lastRate.resetsPerSecond} TCP resets/s; at
    most ${peak('requestsPerSecond')} requests/s and ${peak('resetsPerSecond')} resets/s.
  </p>`;
}

export function runSection(
  run: RunRecord,
  notes: StoredEvent[],
  csrf: string | null,
  traffic: StoredEvent[] = [],
): Html {
  const copies = new Map<string, StoredEvent>();
  const phases: StoredEvent[] = [];
  for (const n of notes) {
    const step = String(n.data.step);
    if (step.startsWith('copy-')) copies.set(step, n);
    else if (step === 'switch' || step === 'rollback-switch') phases.push(n);
  }
  const switchStep = run.steps.find((s) => s.name === 'switch');
  const cancellable = run.state === 'running' && (!switchStep || switchStep.state === 'pending');
  return html`<section
    id="run"
    aria-labelledby="run-h"
    data-run="${run.id}"
    data-refresh="/ui/part/run/${run.id}"
  >
    <h1 id="run-h">Run ${run.id}</h1>
    <p>
      LC <strong>${run.lc}</strong> → standby <strong>${run.standby ?? '(not chosen yet)'}</strong>, method
      ${run.options.method}, patches ${run.options.patches.join(', ')} ·
      <span id="run-state">${stateBadge(run.state)}</span>
    </p>
    ${run.error ? html`<p class="err" role="alert">${run.error.split('\n')[0]}</p>` : ''}
    <ol class="timeline" id="steps" aria-label="steps">
      ${run.steps.map(stepRow)}
    </ol>
    ${
      phases.length
        ? html`<h2 id="phases-h">Switch phases</h2>
            <ol id="switch-phases" aria-labelledby="phases-h">
              ${phases.map((p) => html`<li>${String(p.data.step)}: ${String(p.data.message)}</li>`)}
            </ol>`
        : ''
    }
    ${trafficSummary(traffic)}
    <div id="copy-progress">
      ${[...copies.values()].map((n) => {
        const p = (n.data.progress ?? {}) as { bytesDone?: number; bytesTotal?: number | null };
        const done = p.bytesDone ?? 0;
        const total = p.bytesTotal ?? 0;
        return html`<p>
          <label for="progress-${String(n.data.step)}"
            >${String(n.data.step)}: ${String(n.data.message)}</label
          >
          ${total > 0 ? html`<progress id="progress-${String(n.data.step)}" max="${total}" value="${Math.min(done, total)}"></progress>` : ''}
        </p>`;
      })}
    </div>
    ${
      csrf && cancellable
        ? html`<form method="post" action="/ui/runs/${run.id}/cancel">
            <input type="hidden" name="csrf" value="${csrf}" /><button type="submit">
              Cancel run (before the switch)
            </button>
          </form>`
        : ''
    }
    ${
      csrf && run.state === 'switched'
        ? html`<form method="post" action="/ui/runs/${run.id}/rollback">
            <input type="hidden" name="csrf" value="${csrf}" /><button type="submit">Roll back</button>
          </form>`
        : ''
    }
  </section>`;
}

export function approvalsSection(open: Challenge[], csrf: string | null): Html {
  return html`<section id="approvals" aria-labelledby="approvals-h" data-refresh="/ui/part/approvals">
    <h2 id="approvals-h">Approval queue</h2>
    ${
      open.length === 0
        ? html`<p>Nothing waits for approval.</p>`
        : open.map(
            (c) =>
              html`<article class="approval" id="challenge-${c.challenge.slice(0, 12)}">
                <h3>Challenge ${c.challenge.slice(0, 12)}… for ${c.admin}</h3>
                <p>
                  Patches: ${c.patches.join(', ')} · expires
                  <time datetime="${c.expiresAt}">${c.expiresAt.slice(0, 16).replace('T', ' ')}</time>
                </p>
                ${
                  csrf
                    ? html`<form method="post" action="/ui/approvals" class="grid">
                        <input type="hidden" name="csrf" value="${csrf}" />
                        <input type="hidden" name="challenge" value="${c.challenge}" />
                        <input type="hidden" name="admin" value="${c.admin}" />
                        <label for="decision-${c.challenge.slice(0, 8)}">Decision</label>
                        <select id="decision-${c.challenge.slice(0, 8)}" name="decision">
                          <option value="approve-all">approve all</option>
                          <option value="reject">reject</option>
                          ${c.patches.map((p) => html`<option value="approve: ${p}">approve only ${p}</option>`)}
                        </select>
                        <label for="code-${c.challenge.slice(0, 8)}">Approval code of ${c.admin}</label>
                        <input
                          id="code-${c.challenge.slice(0, 8)}"
                          name="code"
                          inputmode="numeric"
                          autocomplete="one-time-code"
                          required
                        />
                        <button type="submit">Decide</button>
                      </form>`
                    : html`<p>Deciding needs an admin token.</p>`
                }
              </article>`,
          )
    }
  </section>`;
}

/** One line for an event of the patch monitor (a poll's start or end, new patches, a mail). */
function describeMonitorEvent(e: StoredEvent): string {
  const d = e.data as {
    phase?: string;
    feed?: string;
    trigger?: string;
    outcome?: string;
    registered?: string[];
    patches?: string[];
    admin?: string;
    error?: string | null;
    ms?: number;
  };
  const by = d.trigger === 'schedule' ? 'scheduled' : 'asked for';
  switch (d.phase) {
    case 'poll.started':
      return `poll of ${d.feed ?? '?'} started (${by})`;
    case 'poll.ended':
      return `poll of ${d.feed ?? '?'} ended: ${d.outcome ?? '?'} in ${d.ms ?? 0} ms, ${d.registered?.length ?? 0} new${d.error ? ` — ${d.error}` : ''}`;
    case 'patches.found':
      return `new patches on ${d.feed ?? '?'}: ${(d.patches ?? []).join(', ')}`;
    case 'mail.sent':
      return `mailed ${d.admin ?? '?'} about ${(d.patches ?? []).join(', ')}`;
    default:
      return `${e.type} ${JSON.stringify(e.data)}`;
  }
}

/** The patch monitor's recent work, newest first: polls on its schedule or asked for, new patches, mails. */
export function monitorSection(events: StoredEvent[]): Html {
  return html`<section id="monitor" aria-labelledby="monitor-h" data-refresh="/ui/part/monitor">
    <h2 id="monitor-h">Patch monitor</h2>
    ${
      events.length === 0
        ? html`<p>No poll yet.</p>`
        : html`<ol class="activity" reversed>
            ${[...events]
              .reverse()
              .map(
                (e) =>
                  html`<li data-event="${e.id}" data-phase="${String(e.data.phase ?? '')}">
                    <time datetime="${e.at}">${e.at.slice(11, 19)}</time> ${describeMonitorEvent(e)}
                  </li>`,
              )}
          </ol>`
    }
  </section>`;
}

export function auditSection(entries: AuditEntry[]): Html {
  return html`<section id="audit" aria-labelledby="audit-h" data-refresh="/ui/part/audit">
    <h2 id="audit-h">Audit log</h2>
    <table>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Who</th>
          <th scope="col">What</th>
          <th scope="col">On</th>
          <th scope="col">Outcome</th>
        </tr>
      </thead>
      <tbody>
        ${entries.map(
          (e) =>
            html`<tr>
              <td><time datetime="${e.at}">${e.at.slice(0, 19).replace('T', ' ')}</time></td>
              <td>${e.operator}</td>
              <td>${e.action}</td>
              <td>${e.target ?? ''}</td>
              <td>${e.status}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
