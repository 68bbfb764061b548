/**
 * The patch execution program (Fig. 7) as an orchestrator of durable steps: every step is journalled
 * before and after; a failure before the switch undoes the done steps in reverse (the standby is
 * discarded, LC1 never stopped serving); a crash of the manager is recovered by `resumeRun`, which
 * first makes LC1 safe (thawed, unthrottled), lets the switch journal finish or reverse an interrupted
 * switch, and then goes on from the first step not done.
 */
import {
  UnderstudyError,
  isOwnerAlive,
  isUnderstudyError,
  processOwner,
  silentLogger,
  type Logger,
  type Owner,
} from '../core/index.ts';
import { getLc, setRole, type ServiceDefinition } from '../inventory/index.ts';
import { serviceOfLc } from './service.ts';
import type { Catalogue } from '../catalogue/index.ts';
import type { HostContext } from '../host/index.ts';
import { isStoreFull, storeFullError, type Db } from '../store/index.ts';
import { recoverSwitches, type SwitchPlan } from '../switch/index.ts';
import type { RunContext } from './context.ts';
import { bindPlannedSwitch } from './switch-binding.ts';
import { RunJournal } from './journal.ts';
import { crashPoint } from './crash-point.ts';
import { restartTreeChecks } from './tree-check.ts';
import { rollbackSteps } from './rollback.ts';
import { chooseStandby } from './standby-choice.ts';
import { forwardStep, forwardStepsFor, switchStepName, type Step } from './steps.ts';
import type { ResolvedRunOptions, RunEvent, RunOptions, RunRecord } from './types.ts';

export interface RunDeps {
  db: Db;
  /** Who drives the run (default: this process); a test gives each simulated manager its own. */
  owner?: Owner;
  /**
   * Called at every crash point (before and after each step, during the copy, after each switch
   * step). Default: the UNDERSTUDY_CRASH_AT test hook, which kills the process there.
   */
  crashPoint?: (point: string, when: 'before' | 'after' | 'during') => Promise<void> | void;
  host: HostContext;
  catalogue: Catalogue;
  logger?: Logger;
  onEvent?: (event: RunEvent) => void;
  /** Cancels the run's current work (the scan, the copy): the step fails and is undone. */
  signal?: AbortSignal;
  /**
   * Asks the run to stop at its next step boundary (the manager shuts down): the run is left as it
   * is, with no owner, for the recovery of the next start; the call rejects with RUN_INTERRUPTED.
   */
  stop?: AbortSignal;
}

/** Says why no patch is to be applied to `lc`: none marked, or the marked ones are already applied. */
function nothingToDo(lc: string, catalogue: Catalogue): UnderstudyError {
  const applied = catalogue.lcStates({ lc }).filter((s) => s.applyNextRun && s.appliedAt !== null);
  const mark = `understudy patch mark <name> --lc ${lc} --next-run on`;
  if (applied.length > 0)
    return new UnderstudyError(
      'RUN_NOTHING_TO_DO',
      `Every patch marked "apply at next run" for "${lc}" is applied already: ${applied.map((s) => `${s.patch} (${s.appliedAt ?? ''})`).join(', ')}`,
      { hint: `Nothing is left to patch on ${lc}; \`understudy patch list --lc ${lc}\` shows its patches.` },
    );
  const elsewhere = catalogue
    .lcStates({})
    .filter((s) => s.lc !== lc && s.applyNextRun && s.appliedAt === null)
    .map((s) => `${s.patch} is marked for ${s.lc}`);
  return new UnderstudyError('RUN_NOTHING_TO_DO', `No patch is marked "apply at next run" for "${lc}"`, {
    hint: `Mark one (${mark}), or name them with --patches.${elsewhere.length > 0 ? ` (${elsewhere.join('; ')}.)` : ''}`,
  });
}

/**
 * The complete options of a run. `declared`: the services LC1 declares; the first is the one the run
 * moves (SERVICE_NOT_DECLARED when there is none).
 */
export function resolveRunOptions(
  options: RunOptions,
  catalogue: Catalogue,
  declared: readonly ServiceDefinition[] = [],
): ResolvedRunOptions {
  const service = serviceOfLc(options.lc, declared);
  const patches = options.patches ?? catalogue.patchesForNextRun(options.lc).map((p) => p.name);
  if (patches.length === 0) throw nothingToDo(options.lc, catalogue);
  for (const name of patches) catalogue.getPatch(name); // PATCH_NOT_FOUND names a missing one
  return {
    lc: options.lc,
    patches,
    standby: options.standby,
    method: options.method ?? 'instant',
    scanDatabase: options.scanDatabase,
    skipScan: options.skipScan ?? false,
    bootTimeoutMs: options.bootTimeoutMs ?? 120_000,
    healthPath: service.health.kind === 'http' ? service.health.path : '/',
    port: service.ports[0] ?? 80,
    watchMs: options.watchMs ?? 0,
    stateful: options.stateful ?? true,
    service,
  };
}

function contextFor(deps: RunDeps, journal: RunJournal, run: RunRecord): RunContext {
  const logger = (deps.logger ?? silentLogger).child({ runId: run.id, lc: run.lc });
  return {
    runId: run.id,
    owner: (deps.owner ?? processOwner()).id,
    crash: deps.crashPoint ?? crashPoint,
    db: deps.db,
    host: deps.host,
    catalogue: deps.catalogue,
    journal,
    options: run.options,
    facts: run.facts,
    logger,
    signal: deps.signal,
    stop: deps.stop,
    emit: (event) => deps.onEvent?.({ runId: run.id, ...event }),
  };
}

/**
 * The forward steps of a run, as its journal names them (the copy steps depend on LC1's disks when
 * the run started). RUN_RECORD_INVALID for a step this version does not know.
 */
function forwardStepsOf(run: RunRecord): Step[] {
  const rollbackNames = new Set(rollbackSteps.map((s) => s.name));
  return run.steps
    .filter((s) => !rollbackNames.has(s.name))
    .map((record) => {
      const step = forwardStep(record.name);
      if (!step)
        throw new UnderstudyError(
          'RUN_RECORD_INVALID',
          `The record of run ${run.id} is invalid: its step ${record.seq + 1} "${record.name}" is not a step of a patch run`,
          {
            hint: 'The run was journalled by another version of understudy; finish it with that version, or restore the state directory from a backup.',
            details: { runId: run.id, step: record.name, field: 'name' },
          },
        );
      return step;
    });
}

/** Runs `steps` (whose journal rows start at `base`) from the first one not done. */
async function drive(c: RunContext, steps: readonly Step[], base: number): Promise<void> {
  const run = c.journal.get(c.runId);
  // Cancelling is possible up to the switch (the point of no return), never after it; the rollback's
  // steps have no switch step, so none of them is cancellable.
  const lastCancellable = steps.findIndex((s) => s.name === switchStepName);
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as Step;
    const seq = base + i;
    if (run.steps[seq]?.state === 'done') continue;
    if (c.stop?.aborted)
      throw new UnderstudyError(
        'RUN_INTERRUPTED',
        `Run ${c.runId} stopped before ${step.name}: the manager is shutting down`,
        { hint: 'The next understudy command (or serve) finishes it.' },
      );
    await c.crash(step.name, 'before');
    // Checked right before the step is journalled as started, with no await in between: a cancel
    // that saw the switch step pending is never overtaken by the switch.
    if (c.signal?.aborted && i <= lastCancellable) throw cancelledBefore(c, step.name);
    c.journal.stepStarted(c.runId, seq);
    c.emit({ step: step.name, state: 'running' });
    const started = performance.now();
    try {
      const output = await step.run(c);
      const durationMs = performance.now() - started;
      c.journal.stepEnded(c.runId, seq, 'done', { durationMs, output });
      c.emit({ step: step.name, state: 'done', durationMs });
    } catch (error) {
      const durationMs = performance.now() - started;
      const message = error instanceof Error ? error.message : String(error);
      c.journal.stepEnded(c.runId, seq, 'failed', { durationMs, error: message });
      c.emit({ step: step.name, state: 'failed', durationMs, message });
      throw error;
    }
    await c.crash(step.name, 'after');
  }
}

function cancelledBefore(c: RunContext, step: string): UnderstudyError {
  return new UnderstudyError('RUN_CANCELLED', `Run ${c.runId} was cancelled before step ${step}`);
}

/** Undoes the done (or interrupted) forward steps in reverse order: the standby is discarded. */
async function discardStandby(c: RunContext): Promise<void> {
  const run = c.journal.get(c.runId);
  const forward = forwardStepsOf(run);
  for (let seq = forward.length - 1; seq >= 0; seq--) {
    const record = run.steps[seq];
    const step = forward[seq] as Step;
    if (
      !record ||
      (record.state !== 'done' && record.state !== 'running' && record.state !== 'failed') ||
      !step.undo
    )
      continue;
    try {
      await step.undo(c);
      c.journal.stepEnded(c.runId, seq, 'undone', { durationMs: 0, output: record.output ?? undefined });
      c.emit({ step: step.name, state: 'undone' });
    } catch (error) {
      c.logger.error({ err: error, step: step.name }, 'undo failed');
      throw new UnderstudyError(
        'RUN_UNDO_FAILED',
        `Undoing step ${step.name} of run ${c.runId} failed: ${(error as Error).message}`,
        {
          cause: error,
          hint: 'The service is still on the original LC. Inspect the standby by hand (`understudy run show`).',
        },
      );
    }
  }
  if (c.facts.standby) setRole(c.db, c.facts.standby, 'idle');
}

/**
 * The store's filesystem is full: the run cannot record what it does, so it does nothing more — it
 * stops where its journal ends, exactly as a crash of the manager there would (every step can run
 * again), and hands itself to recovery when that can still be written.
 */
function stopOnFullStore(c: RunContext, error: unknown): UnderstudyError {
  try {
    c.journal.handOver(c.runId, c.owner);
  } catch (handOverError) {
    if (!isStoreFull(handOverError)) throw handOverError;
  }
  c.logger.error({ err: error }, 'the state directory is full: the run stopped where its journal ends');
  return storeFullError(
    c.db,
    error,
    `run ${c.runId} cannot record its next step and stopped where its journal ends (nothing after it was done or undone)`,
    `Then \`understudy run resume ${c.runId}\` goes on from there (a running \`understudy serve\` does it when it starts again). The service stays where it was: on ${c.options.lc} unless the run had switched.`,
  );
}

async function goForward(c: RunContext): Promise<RunRecord> {
  try {
    await drive(c, forwardStepsOf(c.journal.get(c.runId)), 0);
  } catch (error) {
    if (isStoreFull(error)) throw stopOnFullStore(c, error);
    if (isUnderstudyError(error, 'RUN_INTERRUPTED')) {
      c.journal.handOver(c.runId, c.owner);
      throw error;
    }
    const run = c.journal.get(c.runId);
    const switched = run.steps.find((s) => s.name === switchStepName)?.state === 'done';
    const switchStarted =
      (run.steps.find((s) => s.name === switchStepName)?.state ?? 'pending') !== 'pending';
    if (c.signal?.aborted && !switchStarted) {
      // Cancelled: the running step stopped on the signal; the standby is discarded as after a failure.
      const during = run.steps.find((s) => s.state === 'failed')?.name;
      await discardStandby(c);
      const cancelled = new UnderstudyError(
        'RUN_CANCELLED',
        `Run ${c.runId} was cancelled by an operator${during ? ` during ${during}` : ''}; the standby was discarded`,
        { hint: `The service stayed on ${c.options.lc}. Start a new run when ready.`, cause: error },
      );
      c.journal.setState(c.runId, 'cancelled', cancelled.message);
      throw cancelled;
    }
    if (switched) {
      // After the switch only bookkeeping is left: the service runs patched; keep the run switched.
      c.journal.setState(c.runId, 'switched', (error as Error).message);
      throw error;
    }
    await discardStandby(c);
    c.journal.setState(c.runId, 'failed', (error as Error).message);
    throw error;
  }
  if (c.facts.watchOutcome === 'unhealthy') {
    // The watch saw the patched service fail: the run rolls back by itself (still holding its LCs).
    c.emit({ step: 'watch', state: 'note', message: `${c.facts.watchDetail ?? 'unhealthy'}: rolling back` });
    c.journal.beginRollback(
      c.runId,
      rollbackSteps.map((s) => s.name),
    );
    return goBack(c);
  }
  const pending = c.facts.switchResult?.cleanupPending;
  c.journal.setState(
    c.runId,
    'switched',
    pending ? `the switch's cleanup is pending: ${pending}` : undefined,
  );
  return c.journal.get(c.runId);
}

export async function startRun(options: RunOptions, deps: RunDeps): Promise<RunRecord> {
  const target = getLc(deps.db, options.lc); // LC_NOT_FOUND before anything about its patches
  const resolved = resolveRunOptions(options, deps.catalogue, target.services);
  const journal = new RunJournal(deps.db);
  const owner = (deps.owner ?? processOwner()).id;
  // One transaction: the busy checks, the claim of LC1, the run and its steps, the choice and the claim
  // of the standby. A second start for a busy LC gets RUN_BUSY (or RUN_NO_STANDBY when the only
  // standby is taken) and leaves nothing written.
  const start = deps.db.transaction(() => {
    const runId = journal.create(
      resolved,
      forwardStepsFor(target).map((s) => s.name),
      owner,
    );
    const choice = chooseStandby({
      db: deps.db,
      journal,
      runId,
      owner,
      lc: resolved.lc,
      wanted: resolved.standby,
    });
    journal.setStandby(runId, choice.lc, owner);
    journal.saveFacts(runId, {
      standby: choice.lc,
      serviceAddress: choice.serviceAddress,
      diskMap: choice.diskMap,
    });
    return runId;
  });
  let id: string;
  try {
    id = start.immediate();
  } catch (error) {
    if (isStoreFull(error))
      throw storeFullError(
        deps.db,
        error,
        `the patch run of ${resolved.lc} cannot be recorded`,
        'Then start it again.',
      );
    throw error;
  }
  deps.onEvent?.({ runId: id, step: 'run', state: 'note', message: `run ${id} started` });
  const c = contextFor(deps, journal, journal.get(id));
  return goForward(c);
}

/** Makes LC1 safe after a crash: a copy may have left it frozen or throttled. */
async function makeLc1Safe(c: RunContext): Promise<void> {
  const status = await c.host.driver.status(c.options.lc);
  if (status.state === 'stopped' || status.state === 'crashed') return;
  await c.host.driver.thaw(c.options.lc);
  const lc = getLc(c.db, c.options.lc);
  for (const disk of lc.disks) {
    const device = c.host.disks.device({ lc, disk: disk.name });
    await c.host.driver.setWriteLimit(c.options.lc, device, null).catch(() => undefined);
  }
}

/** Lets the switch journal finish or reverse any switch a crash interrupted. */
async function recoverInterruptedSwitches(c: RunContext): Promise<void> {
  const { errors } = await recoverSwitches({
    db: c.db,
    logger: c.logger,
    bind: (plan: SwitchPlan) => bindPlannedSwitch(c.db, c.host, plan),
  });
  if (errors.length > 0) throw errors[0];
}

/** Continues (or reverses) a run whose manager died. */
export async function resumeRun(id: string, deps: RunDeps): Promise<RunRecord> {
  const journal = new RunJournal(deps.db);
  const run = journal.get(id);
  if (run.state !== 'running' && run.state !== 'rolling-back') return run;
  journal.claim(id, (deps.owner ?? processOwner()).id);
  const c = contextFor(deps, journal, run);
  await makeLc1Safe(c);
  await recoverInterruptedSwitches(c);
  if (run.state === 'rolling-back') return goBack(c);
  return goForward(c);
}

async function goBack(c: RunContext): Promise<RunRecord> {
  const run = c.journal.get(c.runId);
  const base = run.steps.findIndex((s) => s.name === rollbackSteps[0]?.name);
  try {
    await drive(c, rollbackSteps, base);
  } catch (error) {
    if (isStoreFull(error)) throw stopOnFullStore(c, error);
    if (isUnderstudyError(error, 'RUN_INTERRUPTED')) {
      c.journal.handOver(c.runId, c.owner);
      throw error;
    }
    const switchedBack =
      c.journal.get(c.runId).steps.find((s) => s.name === 'rollback-switch')?.state === 'done';
    c.journal.setState(c.runId, switchedBack ? 'rolled-back' : 'switched', (error as Error).message);
    throw error;
  }
  c.journal.setState(c.runId, 'rolled-back');
  return c.journal.get(c.runId);
}

/** Moves the service back to LC1, with the data written on LC2 since the switch. */
export async function rollbackRun(id: string, deps: RunDeps): Promise<RunRecord> {
  const journal = new RunJournal(deps.db);
  const run = journal.get(id);
  if (run.state === 'rolling-back') return resumeRun(id, deps);
  if (run.state !== 'switched') {
    throw new UnderstudyError(
      'RUN_NOT_SWITCHED',
      `Run ${id} is ${run.state}; only a switched run can be rolled back`,
      {
        hint:
          run.state === 'running'
            ? 'Resume it first: understudy run resume <id>.'
            : 'The service is on the original LC already.',
      },
    );
  }
  journal.claim(id, (deps.owner ?? processOwner()).id);
  journal.beginRollback(
    id,
    rollbackSteps.map((s) => s.name),
  );
  return goBack(contextFor(deps, journal, journal.get(id)));
}

/** On manager start: resumes every unfinished run whose manager is gone. */
export async function recoverRuns(
  deps: RunDeps,
): Promise<{ resumed: RunRecord[]; errors: UnderstudyError[] }> {
  const journal = new RunJournal(deps.db);
  const resumed: RunRecord[] = [];
  const errors: UnderstudyError[] = [];
  // Run by run: a run whose record does not read (RUN_RECORD_INVALID) is reported, the others go on.
  for (const id of journal.unfinishedIds()) {
    try {
      if (journal.ownerAlive(journal.get(id))) continue;
      resumed.push(await resumeRun(id, deps));
    } catch (error) {
      if (isUnderstudyError(error)) errors.push(error);
      else throw error;
    }
  }
  // The whole-tree checks a dead manager left running after a switch: run again in the background
  // (the command that started this recovery waits for them before it closes the store), or recorded
  // as not done.
  for (const id of journal.idsWithTreeChecks()) {
    try {
      const run = journal.get(id);
      if (
        Object.values(run.facts.treeChecks ?? {}).some((f) => f.state === 'running' && !isOwnerAlive(f.owner))
      )
        void Promise.all(restartTreeChecks(contextFor(deps, journal, run), run.state));
    } catch (error) {
      if (isUnderstudyError(error)) errors.push(error);
      else throw error;
    }
  }
  return { resumed, errors };
}

export function listRuns(db: Db): RunRecord[] {
  return new RunJournal(db).list();
}

export function getRun(db: Db, id: string): RunRecord {
  return new RunJournal(db).get(id);
}
