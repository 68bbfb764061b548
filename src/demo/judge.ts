/**
 * The demo judges its own figures against the targets of a zero-downtime patch: no failed request, no
 * acknowledged write lost (when the service keeps data the demo writes), the new version served, in the
 * switch window at most 100 ms added to the steady p99, and no request delayed by 1 s or more, neither in
 * the switch window nor anywhere in the run (the scan, the copy and the standby's boot share the host
 * with the service). A figure that misses its target is named; the
 * verdict is never "ok" beside a bad figure.
 */
import { latencyStats } from '../loadgen/index.ts';
import type { DemoReport } from './types.ts';

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
  /** From the run's start to the switch's end (or the last request): worst delay and requests >= 1 s. */
  runMaxMs: number;
  runDelayedOver1s: number;
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
  const windowMaxMs = windowDelays.reduce((a, b) => Math.max(a, b), 0);
  const maxAddedMs = Math.max(0, windowMaxMs - steadyP99Ms);
  const windowDelayedOver1s = window.filter((x) => delay(x) >= 1000).length;
  const inRun = (t: number): boolean =>
    runStart !== undefined && t >= runStart && (end === undefined || t <= end);
  const run = r.load.records.filter((x) => inRun(x.scheduledAt));
  const runDelays = run.filter((x) => x.outcome === 'ok').map(delay);
  // reduce, not Math.max(...): a run at 1,000 requests/s has more delays than the call stack takes.
  const runMaxMs = runDelays.reduce((a, b) => Math.max(a, b), 0);
  const runDelayedOver1s = run.filter((x) => delay(x) >= 1000).length;
  const failed = r.load.summary.failed;
  const lost = r.dataLost.length;
  const patched = r.versionAfter !== undefined && r.versionAfter !== r.versionBefore;
  const checks: [string, boolean][] = [
    [`failed requests ${failed} (target ${demoTargets.failed})`, failed <= demoTargets.failed],
    ...(r.stateful
      ? [
          [
            `acknowledged writes lost ${lost} of ${r.dataChecked} (target ${demoTargets.lost})`,
            lost <= demoTargets.lost,
          ] as [string, boolean],
        ]
      : []),
    [
      `switch window: max added ${maxAddedMs.toFixed(1)} ms (worst ${windowMaxMs.toFixed(1)} ms over the baseline p99 of ${steadyP99Ms.toFixed(1)} ms before the run) (target <= ${demoTargets.maxAddedMs} ms)`,
      start !== undefined && end !== undefined && window.length > 0 && maxAddedMs <= demoTargets.maxAddedMs,
    ],
    [
      `switch window: ${windowDelayedOver1s} requests delayed >= 1 s (target ${demoTargets.delayedOver1s})`,
      start !== undefined &&
        end !== undefined &&
        window.length > 0 &&
        windowDelayedOver1s <= demoTargets.delayedOver1s,
    ],
    [
      `whole run (scan, copy, standby boot, switch): ${runDelayedOver1s} requests delayed >= 1 s, worst ${runMaxMs.toFixed(1)} ms (target ${demoTargets.delayedOver1s})`,
      runStart !== undefined && runDelayedOver1s <= demoTargets.delayedOver1s,
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
    runMaxMs,
    runDelayedOver1s,
    lines: checks.map(([text, met]) => `${met ? 'met   ' : 'MISSED'}  ${text}`),
  };
}
