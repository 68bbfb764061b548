/**
 * The service's traffic while a patch run or a switch is going on, as the manager itself can measure
 * it (the clients are not ours to ask). Every interval, inside the network namespace of each LC
 * involved (a run's LC1 and standby, a switch's two LCs):
 *
 * - requests served: the service's own counter, `GET http://127.0.0.1:<port>/stats` → `served` (the
 *   demo service offers it); null for a service without one;
 * - TCP resets the LC's kernel sent (`/proc/net/snmp`, Tcp OutRsts): connections it refused or
 *   aborted, which a client sees as failed connections.
 *
 * Each sample is a `traffic` event (of the run, for a run) with the rates over the interval; the
 * console charts them live. Nothing is estimated: an LC that cannot be read reports null.
 */
import { isUnderstudyError, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { EventLog } from '../events/index.ts';
import type { HostContext } from '../app/index.ts';
import { RunJournal } from '../run/index.ts';
import { SwitchJournal } from '../switch/index.ts';

/** What to sample: the LCs of one run or one switch, and the service's port. */
export interface TrafficWindow {
  runId: string | null;
  /** Set for a switch on its own. */
  switchId?: string | null;
  /** LC1 first. */
  lcs: string[];
  port: number;
}

export interface LcTraffic {
  lc: string;
  /** Requests the service on this LC served per second over the interval (null: not known). */
  requestsPerSecond: number | null;
  /** TCP resets this LC sent per second over the interval (null: not known). */
  resetsPerSecond: number | null;
}

export interface TrafficSample {
  intervalMs: number;
  lcs: LcTraffic[];
  /** Sums over the LCs that could be read. */
  requestsPerSecond: number;
  resetsPerSecond: number;
}

interface Counters {
  at: number;
  served: number | null;
  outRsts: number | null;
}

/** Tcp OutRsts of /proc/net/snmp text, or null when it is missing. */
export function parseOutRsts(snmp: string): number | null {
  const lines = snmp.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = lines[i]?.trim().split(/\s+/) ?? [];
    const values = lines[i + 1]?.trim().split(/\s+/) ?? [];
    if (names[0] !== 'Tcp:' || values[0] !== 'Tcp:' || !/^\d/.test(values[1] ?? '')) continue;
    const value = Number(values[names.indexOf('OutRsts')]);
    return names.includes('OutRsts') && Number.isFinite(value) ? value : null;
  }
  return null;
}

/** The rate of a counter between two readings; a counter that went back (a restarted service) counts from 0. */
export function rate(before: number | null, after: number | null, ms: number): number | null {
  if (before === null || after === null || ms <= 0) return null;
  const delta = after >= before ? after - before : after;
  return tenths((delta * 1000) / ms);
}

const tenths = (x: number): number => Math.round(x * 10) / 10;

export interface TrafficSamplerDeps {
  db: Db;
  host: HostContext;
  events: EventLog;
  logger: Logger;
  /**
   * Switches on their own this process drives, known before their journal record exists. Runs and
   * switches that any process (the CLI too) records in the store are found there.
   */
  switches: () => TrafficWindow[];
  intervalMs?: number;
  /** How long after a run ended its LCs are still sampled (default 5 s). */
  tailMs?: number;
}

export interface TrafficSampler {
  /** Samples every interval while there is something to sample. */
  start(): void;
  /** Stops and waits for the running sample. */
  stop(): Promise<void>;
  /** One round now (for tests): reads every window, appends its event, resolves with what was appended. */
  sampleOnce(): Promise<{ window: TrafficWindow; sample: TrafficSample }[]>;
}

export function createTrafficSampler(deps: TrafficSamplerDeps): TrafficSampler {
  const intervalMs = deps.intervalMs ?? 1000;
  const tailMs = deps.tailMs ?? 5000;
  const staleMs = 10 * 60_000;
  const last = new Map<string, Counters>();
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = true;

  /** Runs seen unfinished, kept for `tailMs` after they end so the chart shows where the traffic settled. */
  const recent = new Map<string, { window: TrafficWindow; until: number }>();
  const windows = (): TrafficWindow[] => {
    const now = Date.now();
    for (const r of new RunJournal(deps.db).unfinished())
      recent.set(r.id, {
        window: { runId: r.id, lcs: [r.lc, ...(r.standby ? [r.standby] : [])], port: r.options.port },
        until: now + tailMs,
      });
    // Switches on their own, from the journal: going on, or ended less than tailMs ago. A switch a
    // crash left unfinished is sampled at most staleMs after it began; a run's own switch is the run's.
    for (const s of new SwitchJournal(deps.db).list(20)) {
      const finished = s.finishedAt ? Date.parse(s.finishedAt) : null;
      const live = finished === null ? now - Date.parse(s.startedAt) < staleMs : now - finished < tailMs;
      if (live)
        recent.set(`switch:${s.id}`, {
          window: {
            runId: null,
            switchId: s.id,
            lcs: [s.plan.from.lc, s.plan.to.lc],
            port: s.plan.service.port,
          },
          until: finished === null ? now + tailMs : finished + tailMs,
        });
    }
    for (const [id, entry] of recent) if (entry.until < now) recent.delete(id);
    const runs = [...recent.values()].map((e) => e.window).filter((w) => w.runId !== null);
    const active = deps.switches();
    const samePair = (a: TrafficWindow, b: TrafficWindow): boolean =>
      a.lcs.length === b.lcs.length && a.lcs.every((lc) => b.lcs.includes(lc));
    const journalSwitches = [...recent.values()]
      .map((e) => e.window)
      .filter(
        (w) =>
          w.runId === null &&
          !runs.some((r) => samePair(r, w)) &&
          !active.some((a) => a.switchId === w.switchId || (a.switchId === null && samePair(a, w))),
      );
    return [...runs, ...active, ...journalSwitches];
  };

  /** An expected failure to read (the LC stopped, no such endpoint) is a null, never a made-up value. */
  const readOrNull = async <T>(read: () => Promise<T>): Promise<T | null> => {
    try {
      return await read();
    } catch (error) {
      if (isUnderstudyError(error)) return null;
      throw error;
    }
  };

  async function read(lc: string, port: number): Promise<Counters> {
    const state = (await deps.host.driver.status(lc)).state;
    if (state !== 'running') return { at: Date.now(), served: null, outRsts: null };
    const [stats, snmp] = await Promise.all([
      readOrNull(() =>
        deps.host.driver.netExec(lc, ['curl', '-s', '--max-time', '1', `http://127.0.0.1:${port}/stats`], {
          timeoutMs: 3000,
        }),
      ),
      readOrNull(() => deps.host.driver.netExec(lc, ['cat', '/proc/net/snmp'], { timeoutMs: 3000 })),
    ]);
    let served: number | null = null;
    try {
      const parsed = stats ? (JSON.parse(stats.stdout) as { served?: unknown }) : undefined;
      served = typeof parsed?.served === 'number' ? parsed.served : null;
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
    return { at: Date.now(), served, outRsts: snmp ? parseOutRsts(snmp.stdout) : null };
  }

  async function sampleOnce(): Promise<{ window: TrafficWindow; sample: TrafficSample }[]> {
    const out: { window: TrafficWindow; sample: TrafficSample }[] = [];
    const seen = new Set<string>();
    for (const window of windows()) {
      const lcs: LcTraffic[] = [];
      let ms = 0;
      for (const lc of window.lcs) {
        const key = `${lc}:${window.port}`;
        seen.add(key);
        const now = await read(lc, window.port);
        const before = last.get(key);
        last.set(key, now);
        if (!before) continue;
        ms = Math.max(ms, now.at - before.at);
        lcs.push({
          lc,
          requestsPerSecond: rate(before.served, now.served, now.at - before.at),
          resetsPerSecond: rate(before.outRsts, now.outRsts, now.at - before.at),
        });
      }
      if (lcs.length === 0) continue; // the first reading of each LC only sets the baseline
      const sample: TrafficSample = {
        intervalMs: ms,
        lcs,
        requestsPerSecond: tenths(lcs.reduce((s, l) => s + (l.requestsPerSecond ?? 0), 0)),
        resetsPerSecond: tenths(lcs.reduce((s, l) => s + (l.resetsPerSecond ?? 0), 0)),
      };
      deps.events.append({
        type: 'traffic',
        runId: window.runId,
        lc: window.lcs[0] ?? null,
        data: { ...sample, ...(window.switchId ? { switchId: window.switchId } : {}) },
      });
      out.push({ window, sample });
    }
    // An LC no longer in any window starts from a fresh baseline next time.
    for (const key of [...last.keys()]) if (!seen.has(key)) last.delete(key);
    return out;
  }

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sampleOnce()
        .catch((error: unknown) => deps.logger.error({ err: error }, 'traffic sample failed'))
        .finally(() => {
          running = null;
          schedule();
        });
    }, intervalMs);
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
    sampleOnce,
  };
}
