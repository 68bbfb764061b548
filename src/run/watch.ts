/**
 * The post-switch watch, the last forward step of a run: the patched service is checked at the
 * service address, from the host's network (where its clients are), every `watchIntervalMs` until the
 * run's watch time is over. Its end is fixed in the run's facts when it first starts, so that a
 * manager that died during the watch watches only what is left when the next start resumes it.
 * After `watchFailures` failed checks in a row the step ends with the outcome `unhealthy`, and the
 * orchestrator rolls the run back.
 */
import { UnderstudyError, sleep } from '../core/index.ts';
import { checkHealth } from '../switch/index.ts';
import { saveFacts, type RunContext } from './context.ts';
import { hostNetworkSide } from './service-health.ts';
import { switchHealthOf } from './service-side.ts';
import { runService } from './service.ts';
import type { StepOutput } from './step-outputs.ts';
import { describeMismatch, forgetTreeCheck, treeCheckOf } from './tree-check.ts';

/**
 * A mismatch found by the run's whole-tree check (tree-check.ts), in one line; `settledOnly`: only
 * when the check has already ended (the loop does not wait for it).
 */
async function treeMismatch(c: RunContext, o: { settledOnly?: boolean } = {}): Promise<string | undefined> {
  const check = treeCheckOf(c.runId);
  if (!check) return undefined;
  const outcome = o.settledOnly ? await Promise.race([check, Promise.resolve(undefined)]) : await check;
  return outcome && describeMismatch(outcome);
}

function unhealthyByTree(c: RunContext, mismatch: string, started: number): StepOutput<'watch'> {
  forgetTreeCheck(c.runId);
  c.facts.watchOutcome = 'unhealthy';
  c.facts.watchDetail = `the whole-tree check after the switch found the standby's data different from LC1's at the cut: ${mismatch}`;
  saveFacts(c);
  return {
    outcome: 'unhealthy',
    detail: c.facts.watchDetail,
    watchedMs: Math.round(performance.now() - started),
  };
}

export const watchIntervalMs = 500;
export const watchFailures = 3;

/**
 * Watches the service until the watch time (from the facts) is over. Resolves with how it ended;
 * throws RUN_INTERRUPTED when the manager shuts down meanwhile (the next start resumes the watch).
 */
export async function watchService(c: RunContext): Promise<StepOutput<'watch'>> {
  const address = c.facts.serviceAddress?.split('/')[0];
  const standby = c.facts.standby;
  if (c.options.watchMs <= 0 || !address || !standby) {
    c.facts.watchOutcome = 'skipped';
    c.facts.watchDetail = 'no watch asked';
    saveFacts(c);
    return { outcome: 'skipped', detail: c.facts.watchDetail, watchedMs: 0 };
  }
  if (c.facts.watchOutcome) {
    // Ended before a crash of the manager: the outcome stands.
    return { outcome: c.facts.watchOutcome, detail: c.facts.watchDetail ?? '', watchedMs: 0 };
  }
  c.facts.watchUntil ??= new Date(Date.now() + c.options.watchMs).toISOString();
  saveFacts(c);
  const until = Date.parse(c.facts.watchUntil);
  const service = runService(c.options);
  const port = service.ports[0] ?? c.options.port;
  const check = { ...switchHealthOf(service), retries: 0, intervalMs: 0 };
  const side = hostNetworkSide(c.host, standby);
  const what =
    check.kind === 'http'
      ? `http://${address}:${port}${check.path}`
      : check.kind === 'tcp'
        ? `tcp ${address}:${port}`
        : `"${check.argv.join(' ')}" in ${standby}`;
  c.emit({
    step: 'watch',
    state: 'note',
    message: `watching ${what} for ${Math.max(0, Math.round((until - Date.now()) / 1000))} s`,
  });
  const started = performance.now();
  let failedInRow = 0;
  let first = true;
  let lastOk: boolean | undefined;
  while (Date.now() < until) {
    if (c.stop?.aborted)
      throw new UnderstudyError(
        'RUN_INTERRUPTED',
        `Run ${c.runId} stopped during its watch: the manager is shutting down`,
        { hint: 'The next understudy command (or serve) resumes the watch for the time that is left.' },
      );
    const outcome = await checkHealth(side, check, address, port);
    // Reported: the first check, every failed one and the first that passes again (not every pass).
    if (!outcome.ok || lastOk !== true)
      c.emit({
        step: 'watch',
        state: 'note',
        message: `health ${outcome.ok ? 'ok' : 'failed'}: ${outcome.detail}`,
        health: { ...outcome, lc: standby, phase: 'watch', check: check.kind, target: address, port },
      });
    lastOk = outcome.ok;
    failedInRow = outcome.ok ? 0 : failedInRow + 1;
    if (first) {
      first = false;
      await c.crash('watch', 'during');
    }
    const mismatch = await treeMismatch(c, { settledOnly: true });
    if (mismatch) return unhealthyByTree(c, mismatch, started);
    if (failedInRow >= watchFailures) {
      c.facts.watchOutcome = 'unhealthy';
      c.facts.watchDetail = `the service failed ${failedInRow} health checks in a row on ${standby}: ${outcome.detail}`;
      saveFacts(c);
      return {
        outcome: 'unhealthy',
        detail: c.facts.watchDetail,
        watchedMs: Math.round(performance.now() - started),
      };
    }
    await sleep(Math.min(watchIntervalMs, Math.max(0, until - Date.now())));
  }
  // The whole-tree check of the stateful switch's data disks is part of the watch: it is waited for.
  const mismatch = await treeMismatch(c);
  if (mismatch) return unhealthyByTree(c, mismatch, started);
  forgetTreeCheck(c.runId);
  c.facts.watchOutcome = 'healthy';
  c.facts.watchDetail = `${what} stayed healthy`;
  saveFacts(c);
  return {
    outcome: 'healthy',
    detail: c.facts.watchDetail,
    watchedMs: Math.round(performance.now() - started),
  };
}
