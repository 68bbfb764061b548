/**
 * The demo judges its own figures against the targets of a zero-downtime patch: no failed request, no
 * acknowledged write lost, the new version served, and in the switch window at most 100 ms added to
 * the steady p99 and no request delayed by 1 s or more. A figure that misses its target is named; the
 * verdict is never "ok" beside a bad figure.
 */
import { latencyStats } from '../loadgen/index.ts';
import type { DemoReport } from './demo.ts';

export const demoTargets = { maxAddedMs: 100, delayedOver1s: 0, failed: 0, lost: 0 };

export interface DemoJudgement {
  ok: boolean;
  /** Requests scheduled while the switch ran. */
  windowRequests: number;
  /**
   * The baseline: p99 of the requests scheduled before the patch run began (no switch, no copy),
   * or, without that mark, of those outside the switch window (uploads by their delay beyond the
   * pacing time).
   */
  steadyP99Ms: number;
  /** The worst delay in the switch window, and how much it exceeds the steady p99. */
  windowMaxMs: number;
  maxAddedMs: number;
  windowDelayedOver1s: number;
  /** One line per target: the figure, the target, and whether it is met. */
  lines: string[];
}

/** Upload pacing of the demo's load (src/demo/client-load.ts). */
const uploadDurationMs = 2000;

export function judgeDemo(r: DemoReport): DemoJudgement {
  const start = r.load.marks.find((m) => m.label === 'switch-start')?.at;
  const end = r.load.marks.find((m) => m.label === 'switch-end')?.at;
  const delay = (x: DemoReport['load']['records'][number]): number =>
    x.kind === 'upload' ? Math.max(0, x.latencyMs - uploadDurationMs) : x.latencyMs;
  const inWindow = (t: number): boolean => start !== undefined && end !== undefined && t >= start && t <= end;
  const ok = r.load.records.filter((x) => x.outcome === 'ok');
  const window = r.load.records.filter((x) => inWindow(x.scheduledAt));
  const runStart = r.load.marks.find((m) => m.label === 'run-start')?.at;
  const before = runStart === undefined ? [] : ok.filter((x) => x.scheduledAt < runStart);
  const steadyP99Ms = latencyStats(
    (before.length > 0 ? before : ok.filter((x) => !inWindow(x.scheduledAt))).map(delay),
  ).p99;
  const windowDelays = window.filter((x) => x.outcome === 'ok').map(delay);
  const windowMaxMs = windowDelays.length > 0 ? Math.max(...windowDelays) : 0;
  const maxAddedMs = Math.max(0, windowMaxMs - steadyP99Ms);
  const windowDelayedOver1s = window.filter((x) => delay(x) >= 1000).length;
  const failed = r.load.summary.failed;
  const lost = r.dataLost.length;
  const patched = r.versionAfter !== undefined && r.versionAfter !== r.versionBefore;
  const checks: [string, boolean][] = [
    [`failed requests ${failed} (target ${demoTargets.failed})`, failed <= demoTargets.failed],
    [
      `acknowledged writes lost ${lost} of ${r.dataChecked} (target ${demoTargets.lost})`,
      lost <= demoTargets.lost,
    ],
    [
      `switch window: max added ${maxAddedMs.toFixed(1)} ms (worst ${windowMaxMs.toFixed(1)} ms over the baseline p99 of ${steadyP99Ms.toFixed(1)} ms before the run) (target <= ${demoTargets.maxAddedMs} ms)`,
      start !== undefined && end !== undefined && maxAddedMs <= demoTargets.maxAddedMs,
    ],
    [
      `switch window: ${windowDelayedOver1s} requests delayed >= 1 s (target ${demoTargets.delayedOver1s})`,
      start !== undefined && end !== undefined && windowDelayedOver1s <= demoTargets.delayedOver1s,
    ],
    [`version ${r.versionBefore ?? '?'} → ${r.versionAfter ?? '?'} (target: the patched version)`, patched],
  ];
  return {
    ok: checks.every(([, met]) => met),
    windowRequests: window.length,
    steadyP99Ms,
    windowMaxMs,
    maxAddedMs,
    windowDelayedOver1s,
    lines: checks.map(([text, met]) => `${met ? 'met   ' : 'MISSED'}  ${text}`),
  };
}
