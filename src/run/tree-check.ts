/**
 * The whole-tree check of a run's stateful switch: once the standby serves, every data disk of LC1
 * at the cut is compared with the standby's at the same moment (verifyDataDisks), in the background
 * and paced, so the switch's hold never waits for it. Its outcome is a run event (`verify.tree` ok
 * or mismatch, with the first differing paths); a mismatch is an alarm (an error in the log) and
 * ends the watch as unhealthy, so that the run rolls back with its data.
 *
 * The check lives in the memory of the process that made the switch: a manager that restarts after
 * the switch does not run it again (the next sync of the pair replaces the snapshots it compares).
 */
import type { TreeCheckResult } from '../disk-copy/index.ts';
import { getLc } from '../inventory/index.ts';
import type { RunContext } from './context.ts';
import type { DiskMap } from './disk-map.ts';
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
  const check = verifyDataDisks(c.host, getLc(c.db, o.from), getLc(c.db, o.to), {
    ...(o.diskMap ? { diskMap: o.diskMap } : {}),
    logger: c.logger,
  }).then(
    (results) => {
      for (const r of results) report(c, o.step, r);
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
