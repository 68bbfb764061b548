/**
 * The whole-tree check of a run's stateful switch: once the standby serves, every data disk of LC1
 * at the cut is compared with the standby's at the same moment (verifyDataDisks), in the background
 * and paced, so the switch's hold never waits for it. Its outcome is a run event (`verify.tree` ok
 * or mismatch, with the first differing paths); a mismatch is an alarm (an error in the log) and
 * ends the watch as unhealthy, so that the run rolls back with its data.
 *
 * Without a watch nothing is rolled back: a mismatch is recorded in the run's facts (`treeChecks`,
 * shown by `run show`), carried by the run's events, and makes the command that ran the run fail.
 *
 * The check runs in the process that made the switch; its state is in the run's facts from its
 * start (`running`, with the process's identity). A manager that dies meanwhile leaves it `running`:
 * the recovery of the next start runs it again (restartTreeChecks).
 */
import { isOwnerAlive, processOwner } from '../core/index.ts';
import type { TreeCheckResult } from '../disk-copy/index.ts';
import { getLc } from '../inventory/index.ts';
import { saveFacts, type RunContext } from './context.ts';
import type { RunFacts } from './facts.ts';
import { invertDiskMap, type DiskMap } from './disk-map.ts';
import { verifyDataDisks } from './switch-binding.ts';

/** The outcome of a run's tree check: the results per disk, or why it could not run. */
export type TreeCheckOutcome = { results: TreeCheckResult[] } | { error: string };

const checks = new Map<string, Promise<TreeCheckOutcome>>();
/** Every check this process has running (forward and rollback), by run, so that it can wait for them. */
const pending = new Map<string, Promise<TreeCheckOutcome>>();
let started = 0;

/**
 * Resolves once every tree check this process started (of one run, or of all) has finished: a
 * command waits for it before it records the run's end and closes the store its events go to.
 */
export async function treeChecksSettled(runId?: string): Promise<void> {
  const of = (): Promise<TreeCheckOutcome>[] =>
    [...pending].filter(([key]) => runId === undefined || key.startsWith(`${runId}#`)).map(([, p]) => p);
  for (let waiting = of(); waiting.length > 0; waiting = of()) await Promise.allSettled(waiting);
}

/** Emits a check's event; a store closed under a check ends the report, not the process. */
function emitSafely(c: RunContext, event: Parameters<RunContext['emit']>[0]): void {
  try {
    c.emit(event);
  } catch (error) {
    c.logger.warn({ runId: c.runId, err: error }, 'the whole-tree check could not record its outcome');
  }
}

type TreeCheckFact = NonNullable<RunFacts['treeChecks']>[string];

/** Records the state of the check of `step` in the run's facts (as emitSafely, never throws). */
function recordCheck(
  c: RunContext,
  step: string,
  fact: Pick<TreeCheckFact, 'state' | 'detail' | 'from' | 'to'>,
): void {
  c.facts.treeChecks = {
    ...c.facts.treeChecks,
    [step]: { ...fact, owner: processOwner().id, at: new Date().toISOString() },
  };
  try {
    saveFacts(c);
  } catch (error) {
    c.logger.warn({ runId: c.runId, err: error }, 'the whole-tree check could not record its state');
  }
}

/** The check's state as one fact: the worst result over the disks. */
function factOf(outcome: TreeCheckOutcome): Pick<TreeCheckFact, 'state' | 'detail'> {
  if (!('results' in outcome)) return { state: 'error', detail: outcome.error };
  const mismatch = describeMismatch(outcome);
  if (mismatch) return { state: 'mismatch', detail: mismatch };
  const skipped = outcome.results.filter((r) => r.result === 'skipped');
  if (outcome.results.length === 0 || skipped.length === outcome.results.length)
    return {
      state: 'skipped',
      detail:
        skipped.map((r) => `${r.from} → ${r.to}: ${r.reason ?? ''}`).join('; ') || 'no data disk to compare',
    };
  const entries = outcome.results.reduce((n, r) => n + r.entries, 0);
  return {
    state: 'ok',
    detail: `${outcome.results.map((r) => `${r.to} equals ${r.from} at the cut`).join('; ')} (${entries} entries compared)${skipped.length ? `; skipped: ${skipped.map((r) => r.from).join(', ')}` : ''}`,
  };
}

/**
 * The mismatch found by the tree check of the switch that put the run's service where it is (undefined
 * when none): what makes the command that ran the run fail, and what `run show` puts first.
 */
export function treeMismatchOf(run: { state: string; facts: RunFacts }): string | undefined {
  // The check of the switch that put the service where it is now: the forward switch's while the
  // run stays switched, the rollback's once it is rolled back (a forward mismatch the watch found
  // is what rolled it back: the run's state says so).
  const step = run.state === 'rolled-back' ? 'rollback-switch' : 'switch';
  const fact = run.facts.treeChecks?.[step];
  return fact?.state === 'mismatch' ? fact.detail : undefined;
}

/** What the watch judges: the run's tree check in progress or done, if this process started one. */
export function treeCheckOf(runId: string): Promise<TreeCheckOutcome> | undefined {
  return checks.get(runId);
}

/** The watch has judged the run's check. */
export function forgetTreeCheck(runId: string): void {
  checks.delete(runId);
}

/** The mismatches of a finished check, in one line (undefined when every disk passed). */
export function describeMismatch(outcome: TreeCheckOutcome): string | undefined {
  if (!('results' in outcome)) return undefined;
  const bad = outcome.results.filter((r) => r.result === 'mismatch');
  if (bad.length === 0) return undefined;
  return bad.map((r) => `${r.to} differs from ${r.from} at the cut: ${r.paths.join(', ')}`).join('; ');
}

function report(c: RunContext, step: string, r: TreeCheckResult): void {
  const seconds = (r.durationMs / 1000).toFixed(1);
  const read = `${r.entries} entries compared, ${r.excluded} changed since the cut left out, ${(r.bytes / 1e6).toFixed(1)} MB read in ${seconds} s`;
  const message =
    r.result === 'ok'
      ? `verify.tree ok: ${r.to} equals ${r.from} at the cut (${read})`
      : r.result === 'mismatch'
        ? `verify.tree MISMATCH: ${r.to} differs from ${r.from} at the cut in ${r.paths.join(', ')} (${read})`
        : `verify.tree skipped for ${r.from} → ${r.to}: ${r.reason ?? ''}`;
  if (r.result === 'mismatch')
    c.logger.error({ runId: c.runId, check: r }, 'the standby differs from LC1 at the cut');
  emitSafely(c, {
    step,
    state: 'note',
    message,
    progress: {
      phase: 'verify.tree',
      result: r.result,
      from: r.from,
      to: r.to,
      entries: r.entries,
      excluded: r.excluded,
      bytes: r.bytes,
      durationMs: Math.round(r.durationMs),
      paths: r.paths.join(', '),
    },
  });
}

/**
 * Starts the tree check of the data disks after a stateful switch from `from` to `to`; its events are
 * emitted under `step` as each disk finishes. Never rejects: a check that cannot run is reported.
 */
export function startTreeCheck(
  c: RunContext,
  o: { step: string; from: string; to: string; diskMap?: DiskMap },
): Promise<TreeCheckOutcome> {
  const sides = { from: o.from, to: o.to };
  recordCheck(c, o.step, { state: 'running', detail: 'comparing the data disks whole', ...sides });
  const check = verifyDataDisks(c.host, getLc(c.db, o.from), getLc(c.db, o.to), {
    ...(o.diskMap ? { diskMap: o.diskMap } : {}),
    logger: c.logger,
  }).then(
    (results) => {
      for (const r of results) report(c, o.step, r);
      recordCheck(c, o.step, { ...factOf({ results }), ...sides });
      return { results };
    },
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      c.logger.warn({ runId: c.runId, err: error }, 'the whole-tree check could not run');
      emitSafely(c, {
        step: o.step,
        state: 'note',
        message: `verify.tree could not run: ${message}`,
        progress: { phase: 'verify.tree', result: 'error' },
      });
      recordCheck(c, o.step, { state: 'error', detail: message, ...sides });
      return { error: message };
    },
  );
  const key = `${c.runId}#${++started}`;
  pending.set(key, check);
  void check.finally(() => pending.delete(key));
  // The forward switch's check is what the watch judges (and takes); the rollback's is reported only.
  if (o.step === 'switch') checks.set(c.runId, check);
  return check;
}

/**
 * After a crash of the manager: a run's tree check left `running` by a process that is gone is run
 * again, in the background (from the pair's sync bases, which stay until the pair is synced again),
 * when the service is still where that switch put it; otherwise it is recorded `skipped`, saying it
 * was not done. Either way the run's events say so. Returns the checks started again.
 */
export function restartTreeChecks(c: RunContext, state: string): Promise<TreeCheckOutcome>[] {
  const started: Promise<TreeCheckOutcome>[] = [];
  for (const [step, fact] of Object.entries(c.facts.treeChecks ?? {})) {
    if (fact.state !== 'running' || isOwnerAlive(fact.owner)) continue;
    const current =
      (step === 'switch' && state === 'switched') || (step === 'rollback-switch' && state === 'rolled-back');
    if (!current) {
      const detail = `not done: the manager (${fact.owner}) stopped during the check, and the run is ${state} since`;
      recordCheck(c, step, { state: 'skipped', detail, from: fact.from, to: fact.to });
      emitSafely(c, {
        step,
        state: 'note',
        message: `verify.tree ${detail}`,
        progress: { phase: 'verify.tree', result: 'skipped', from: fact.from, to: fact.to },
      });
      continue;
    }
    emitSafely(c, {
      step,
      state: 'note',
      message: `verify.tree: the manager (${fact.owner}) stopped during the whole-tree check of ${fact.from} → ${fact.to}; it runs again`,
      progress: { phase: 'verify.tree', result: 'restarted', from: fact.from, to: fact.to },
    });
    const diskMap = step === 'switch' ? c.facts.diskMap : invertDiskMap(c.facts.diskMap);
    started.push(startTreeCheck(c, { step, from: fact.from, to: fact.to, ...(diskMap ? { diskMap } : {}) }));
  }
  return started;
}
