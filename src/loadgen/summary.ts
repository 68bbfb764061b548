/** Turns request records into the numbers a switchover test asserts on. */
import {
  outcomes,
  requestKinds,
  type LatencyStats,
  type LoadSummary,
  type Outcome,
  type RequestKind,
  type RequestRecord,
} from './types.ts';

/** The q-quantile (0..1) of ascending-sorted values, nearest-rank; 0 for an empty list. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

/** p50/p99/max of the given latencies. */
export function latencyStats(latencies: readonly number[]): LatencyStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: round(quantile(sorted, 0.5)),
    p99: round(quantile(sorted, 0.99)),
    max: round(sorted[sorted.length - 1] ?? 0),
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function count(map: Record<string, number>, key: string | undefined): void {
  if (key !== undefined) map[key] = (map[key] ?? 0) + 1;
}

/**
 * How late a request was beyond what it was designed to take: its latency, minus the pacing time for
 * uploads (whose body is deliberately sent over `uploadDurationMs`).
 */
export function delayOf(record: RequestRecord, uploadDurationMs: number): number {
  return record.kind === 'upload' ? Math.max(0, record.latencyMs - uploadDurationMs) : record.latencyMs;
}

/**
 * Counts per outcome, kind, answering LC, version, status and error code. `latency` covers the `ok`
 * requests other than uploads (a failure's "latency" is only how long it took to fail; an upload's is
 * mostly its deliberate pacing), `uploadLatency` the ok uploads; `delayedOver1s` covers all requests,
 * uploads judged by their delay beyond the pacing time.
 */
export function summarize(input: {
  records: readonly RequestRecord[];
  durationMs: number;
  uploadDurationMs: number;
  connectionsOpened: number;
  ackedWrites: number;
}): LoadSummary {
  const { records } = input;
  const byOutcome = Object.fromEntries(outcomes.map((o) => [o, 0])) as Record<Outcome, number>;
  const byKind = Object.fromEntries(requestKinds.map((k) => [k, { total: 0, failed: 0 }])) as Record<
    RequestKind,
    { total: number; failed: number }
  >;
  const byServedBy: Record<string, number> = {};
  const byVersion: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  const byErrorCode: Record<string, number> = {};
  const okLatencies: number[] = [];
  const uploadLatencies: number[] = [];
  const lags: number[] = [];
  let delayedOver1s = 0;
  let resent = 0;
  for (const record of records) {
    if (record.resent) resent += 1;
    byOutcome[record.outcome] += 1;
    byKind[record.kind].total += 1;
    if (record.outcome !== 'ok') byKind[record.kind].failed += 1;
    else (record.kind === 'upload' ? uploadLatencies : okLatencies).push(record.latencyMs);
    count(byServedBy, record.servedBy);
    count(byVersion, record.version);
    count(byStatus, record.status === undefined ? undefined : String(record.status));
    count(byErrorCode, record.errorCode);
    if (delayOf(record, input.uploadDurationMs) >= 1000) delayedOver1s += 1;
    lags.push(record.lagMs);
  }
  const lagStats = latencyStats(lags);
  return {
    total: records.length,
    failed: records.length - byOutcome.ok,
    byOutcome,
    byKind,
    byServedBy,
    byVersion,
    byStatus,
    byErrorCode,
    latency: latencyStats(okLatencies),
    uploadLatency: latencyStats(uploadLatencies),
    delayedOver1s,
    achievedRate: input.durationMs > 0 ? Math.round((records.length / input.durationMs) * 1000 * 10) / 10 : 0,
    lagP99Ms: lagStats.p99,
    lagMaxMs: lagStats.max,
    connectionsOpened: input.connectionsOpened,
    ackedWrites: input.ackedWrites,
    resent,
  };
}

export interface WindowLatency {
  /** Requests scheduled inside [t0, t1] (ok ones for the latency figures). */
  window: LatencyStats & { failed: number };
  /** Requests scheduled outside the window: the steady state. */
  steady: LatencyStats & { failed: number };
  /** window.p99 − steady.p99 */
  addedP99Ms: number;
  /** window.max − steady.max (negative when the window was no worse than the worst steady request) */
  addedMaxMs: number;
}

/**
 * Latency of requests scheduled in the window [t0, t1] (ms since the epoch, e.g. two marks around a
 * switch) against the steady state outside it: the latency the switch added. Latency figures cover ok
 * requests, uploads by their delay beyond the pacing time (pass `uploadDurationMs`, default 0);
 * failures are counted on each side.
 */
export function windowLatency(
  records: readonly RequestRecord[],
  window: { t0: number; t1: number; uploadDurationMs?: number },
): WindowLatency {
  const inside: number[] = [];
  const outside: number[] = [];
  let failedInside = 0;
  let failedOutside = 0;
  for (const record of records) {
    const isInside = record.scheduledAt >= window.t0 && record.scheduledAt <= window.t1;
    if (record.outcome !== 'ok') {
      if (isInside) failedInside += 1;
      else failedOutside += 1;
    } else (isInside ? inside : outside).push(delayOf(record, window.uploadDurationMs ?? 0));
  }
  const win = latencyStats(inside);
  const steady = latencyStats(outside);
  return {
    window: { ...win, failed: failedInside },
    steady: { ...steady, failed: failedOutside },
    addedP99Ms: round(win.p99 - steady.p99),
    addedMaxMs: round(win.max - steady.max),
  };
}
