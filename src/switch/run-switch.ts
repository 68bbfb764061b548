/**
 * The switch orchestrator: a preflight that changes nothing, then the method's steps, each journalled
 * before and after; on failure every done step is undone in reverse order. `recoverSwitches` finishes
 * or reverses a switch a crash of the manager interrupted.
 */
import { randomBytes } from 'node:crypto';
import { UnderstudyError, silentLogger, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { cutGate } from './cut.ts';
import { checkHealth, type HealthReport } from './health.ts';
import { SwitchJournal, type SwitchRecord } from './journal.ts';
import { devicesOf, hostOf, listAddresses, macOf, otherHolders } from './net-ops.ts';
import { resolvePlan } from './plan.ts';
import { stepsFor, type Step, type StepContext, type SwitchFacts } from './steps.ts';
import type {
  FinalSyncPhases,
  MoveNic,
  SwitchPlan,
  SwitchPlanInput,
  SwitchResult,
  SwitchSide,
} from './types.ts';

export interface SwitchBinding {
  from: SwitchSide;
  to: SwitchSide;
  moveNic: MoveNic;
  /**
   * Stateful switches: the last incremental copy of the data disks (from the disk copy), run after
   * LC1's last write and before LC2 serves; may report its own phases.
   */
  finalSync?: () => Promise<FinalSyncPhases | void>;
  /**
   * Stateful switches: what can be done for the final sync before requests are held (flushing the
   * disks so that the cut's snapshots cost little, syncing what the cut need not stop). Called by the
   * `hold` step before LC2 becomes reachable; must be safe to repeat.
   */
  prepareFinalSync?: () => Promise<FinalSyncPhases | void>;
}

export interface SwitchDeps extends SwitchBinding {
  db: Db;
  logger?: Logger;
  /** Called after each step is journalled done; a test uses it to inject faults or simulate a crash. */
  afterStep?: (step: string, switchId: string) => Promise<void> | void;
  /** Told the outcome of each health check: LC2's before the switch, the service's after it. */
  onHealth?: (report: HealthReport) => void;
  /**
   * Told what an operator should know as it happens, before the switch changes anything (slow writes
   * found, a wait for a quieter moment, a fallback to the connection drain) and after it (the phases).
   */
  onNote?: (message: string, detail: Record<string, number | string>) => void;
}

export interface RecoverDeps {
  db: Db;
  logger?: Logger;
  /** Binds the LCs named in a journalled plan to sides (the lead: inventory + driver). */
  bind(plan: SwitchPlan): Promise<SwitchBinding> | SwitchBinding;
  /**
   * Whether this recovery may take the switch over; false leaves it to the live process that is
   * still making it (default: every unfinished switch is taken).
   */
  claim?(record: SwitchRecord): boolean;
}

/** Checks everything that can be checked without changing anything; throws the first problem found. */
export async function preflightSwitch(
  plan: SwitchPlan,
  from: SwitchSide,
  to: SwitchSide,
  onHealth?: (report: HealthReport) => void,
): Promise<void> {
  const service = plan.service.address;
  const held = await listAddresses(from, plan.from.nic);
  if (!held.some((a) => hostOf(a) === hostOf(service))) {
    throw new UnderstudyError(
      'SWITCH_ADDRESS_NOT_HELD',
      `${from.name} does not hold ${service} on ${plan.from.nic} (it holds: ${held.join(', ') || 'nothing'})`,
      {
        details: { lc: from.name, nic: plan.from.nic, held },
      },
    );
  }
  for (const [side, nic, mac] of [
    [from, plan.from.nic, plan.from.mac],
    [to, plan.to.nic, plan.to.mac],
  ] as const) {
    const actual = await macOf(side, nic);
    if (actual !== mac) {
      throw new UnderstudyError(
        'SWITCH_PLAN_INVALID',
        `${side.name}'s NIC ${nic} has MAC ${actual ?? '(no such NIC)'}, not ${mac}`,
        {
          details: { lc: side.name, nic },
        },
      );
    }
  }
  if ((await listAddresses(to, plan.to.nic)).some((a) => hostOf(a) === hostOf(service))) {
    throw new UnderstudyError(
      'SWITCH_ADDRESS_CONFLICT',
      `${to.name} already holds ${service} on ${plan.to.nic}`,
      { details: { lc: to.name } },
    );
  }
  // LC1's own NICs answer its probe too when it has several on the bridge: only others count.
  const ownMacs = (await devicesOf(from)).map((d) => d.mac);
  const others = await otherHolders(from, service, plan.from.nic, [plan.from.mac, ...ownMacs]);
  if (others.length > 0) {
    throw new UnderstudyError(
      'SWITCH_ADDRESS_CONFLICT',
      `${service} is also answered on the bridge by ${others.join(', ')}`,
      {
        details: { address: service, macs: others },
      },
    );
  }
  const own = (await listAddresses(to, plan.to.nic))[0];
  const target = own ? hostOf(own) : '127.0.0.1';
  const health = await checkHealth(to, plan.health, target, plan.service.port);
  onHealth?.({
    ...health,
    lc: to.name,
    phase: 'before',
    check: plan.health.kind,
    target,
    port: plan.service.port,
  });
  if (!health.ok) {
    throw new UnderstudyError(
      'SWITCH_STANDBY_UNHEALTHY',
      `The service on the standby ${to.name} is not healthy: ${health.detail}`,
      {
        details: { lc: to.name, attempts: health.attempts },
      },
    );
  }
}

/**
 * Completes the plan from the LCs as they are and from the journal: LC1 keeps an address it already
 * holds besides the service address (only when it has none does it take `newAddress`), and LC2's
 * spares — addresses earlier switches added to it as LC1's new address — are to be released.
 */
async function settlePlan(
  plan: SwitchPlan,
  from: SwitchSide,
  to: SwitchSide,
  journal: SwitchJournal,
): Promise<SwitchPlan> {
  const service = hostOf(plan.service.address);
  const kept = (await listAddresses(from, plan.from.nic)).find((a) => hostOf(a) !== service);
  const newAddress = kept ?? plan.from.newAddress;
  if (!newAddress)
    throw new UnderstudyError(
      'SWITCH_PLAN_INVALID',
      `The ${plan.method} switch needs a new address for ${plan.from.lc}: it holds no address but ${plan.service.address} on ${plan.from.nic}`,
      { hint: 'Give LC1 a spare address in the service subnet (--from-address).' },
    );
  const given = journal.sparesGivenTo(plan.to.lc);
  const spares = (await listAddresses(to, plan.to.nic)).filter(
    (a) => given.has(hostOf(a)) && hostOf(a) !== service,
  );
  return { ...plan, from: { ...plan.from, newAddress }, to: { ...plan.to, spares } };
}

function newSwitchId(): string {
  return `sw-${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`;
}

interface Execution {
  id: string;
  journal: SwitchJournal;
  steps: Step[];
  c: StepContext;
  afterStep?: (step: string, switchId: string) => Promise<void> | void;
  times: { name: string; ms: number }[];
  started: number;
}

function resultOf(x: Execution, outcome: SwitchResult['outcome']): SwitchResult {
  const f = x.c.facts;
  return {
    id: x.id,
    method: x.c.plan.method,
    outcome,
    durationMs: Date.now() - x.started,
    drainMs: f.drainMs ?? 0,
    leftOnLc1: f.leftOnLc1 ?? 0,
    holdMs: f.holdMs ?? 0,
    syncMs: f.syncMs ?? 0,
    ...(x.c.plan.stateful && f.cut
      ? {
          cut: f.cut,
          phases: {
            gateMs: f.gateMs,
            gateRetries: f.gateRetries,
            prepareMs: f.prepareMs,
            prepare: f.preparePhases,
            drainMs: f.drainMs,
            syncMs: f.syncMs,
            sync: f.syncPhases,
            releaseMs: f.releaseMs,
            reloadMs: f.reloadMs,
            holdMs: f.holdMs,
            holdExceeded: f.holdExceeded,
            holdJournalMs: f.holdJournalMs,
            finishMs: f.finishMs,
          },
        }
      : {}),
    steps: x.times,
  };
}

/** The phases as flat numbers (sync phases prefixed `sync`), for progress events. */
function flatPhases(result: SwitchResult): Record<string, number | string> {
  const flat: Record<string, number | string> = { phase: 'phases', cut: result.cut ?? '' };
  const { sync, holdExceeded, ...rest } = result.phases ?? {};
  for (const [k, v] of Object.entries(rest)) if (typeof v === 'number') flat[k] = v;
  for (const [k, v] of Object.entries(sync ?? {}))
    if (typeof v === 'number') flat[`sync${k.charAt(0).toUpperCase()}${k.slice(1)}`] = v;
  if (holdExceeded) flat.holdExceeded = 1;
  return flat;
}

/** One line on where the hold of a stateful switch went. */
export function describePhases(result: SwitchResult): string | undefined {
  const p = result.phases;
  if (!p) return undefined;
  const ms = (v: number | undefined): string => (v === undefined ? '-' : `${Math.round(v)} ms`);
  const conflicts = p.sync?.conflicts
    ? `, ${p.sync.conflicts} conflicts kept on the new LC (${(p.sync.conflictPaths ?? []).join(', ')})`
    : '';
  const disks = p.sync?.disks?.length ? `; ${p.sync.disks.join('; ')}` : '';
  const prepared = p.prepare?.disks?.length
    ? ` (${p.prepare.disks.join('; ')}${p.prepare.conflicts ? `, ${p.prepare.conflicts} conflicts kept on the new LC (${(p.prepare.conflictPaths ?? []).join(', ')})` : ''})`
    : '';
  const sync = p.sync
    ? ` (snapshot ${ms(p.sync.snapshotMs)}, send ${ms(p.sync.diffMs)}, receive ${ms(p.sync.copyMs)}, verify ${ms(p.sync.verifyMs)}${p.sync.storeMs === undefined ? '' : `, store ${ms(p.sync.storeMs)}`}, ${p.sync.files} files, ${p.sync.bytes} bytes${conflicts}${disks})`
    : '';
  return (
    `cut by ${result.cut}: hold ${ms(p.holdMs)}${p.holdExceeded ? ' (over maxHoldMs: writes in flight were waited for)' : ''}` +
    ` = drain to the last write ${ms(p.drainMs)}, final sync ${ms(p.syncMs)}${sync}, release ${ms(p.releaseMs)}` +
    `${p.reloadMs === undefined ? '' : ` (reload ${ms(p.reloadMs)})`}` +
    `${p.holdJournalMs === undefined ? '' : `, the switch's journal ${ms(p.holdJournalMs)}`}; before it: check of writes ${ms(p.gateMs)}` +
    `${p.gateRetries ? ` (${p.gateRetries} waits)` : ''}${p.prepareMs === undefined ? '' : `, preparation of the sync ${ms(p.prepareMs)}${prepared}`}; after it: old LC finished in ${ms(p.finishMs)}`
  );
}

/** Undoes steps [0, upTo] that are not known to be undone, in reverse; throws SWITCH_REVERSED or SWITCH_REVERSE_FAILED. */
async function reverse(
  x: Execution,
  upTo: number,
  cause: unknown,
  skip: ReadonlySet<number> = new Set(),
): Promise<never> {
  const { journal, id, c } = x;
  journal.setState(id, 'reversing', cause instanceof Error ? cause.message : String(cause));
  c.logger.warn({ switchId: id, err: cause }, 'switch failed; reversing');
  const failures: string[] = [];
  for (let i = upTo; i >= 0; i--) {
    const step = x.steps[i];
    if (!step?.undo || skip.has(i)) continue;
    journal.stepState(id, i, 'undoing');
    try {
      await step.undo(c);
      journal.stepState(id, i, 'undone');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push(`${step.name}: ${message}`);
      journal.stepState(id, i, 'undo-failed', message);
      c.logger.error({ switchId: id, step: step.name, err: error }, 'undo failed');
    }
  }
  await Promise.all(c.background);
  const reason = cause instanceof Error ? cause.message : String(cause);
  if (failures.length > 0) {
    journal.setState(id, 'failed', `${reason}; undo failed: ${failures.join('; ')}`);
    throw new UnderstudyError(
      'SWITCH_REVERSE_FAILED',
      `Switch ${id} from ${x.c.from.name} to ${x.c.to.name} failed (${reason}) and could not be fully undone: ${failures.join('; ')}`,
      {
        cause,
        details: { switchId: id, failures },
      },
    );
  }
  journal.setState(id, 'reversed');
  throw new UnderstudyError(
    'SWITCH_REVERSED',
    `Switch ${id} from ${x.c.from.name} to ${x.c.to.name} failed and was reversed; the service stays on ${x.c.from.name}: ${reason}`,
    {
      cause,
      hint: cause instanceof UnderstudyError ? cause.hint : undefined,
      details: { switchId: id, ...(cause instanceof UnderstudyError ? { causeCode: cause.code } : {}) },
    },
  );
}

/**
 * The hold of an instant stateful switch is on: LC2 took the address and holds the new requests, and
 * nothing has let them go yet (from `lc2-takes-address` to `release-hold`).
 */
const heldWithoutRelease = (c: StepContext): boolean =>
  c.facts.reachableAt !== undefined && c.facts.releaseMs === undefined;

/** The step lets LC2 serve: what recovery needs must be on disk before it starts. */
const lets = (step: Step): boolean => step.name === 'release-hold';

/** Runs steps from `first` on; returns the result or throws after reversing. */
async function runFrom(x: Execution, first: number): Promise<SwitchResult> {
  const { journal, id, c } = x;
  // Whether step i's start was journalled with step i-1's end (inside the hold).
  let startJournalled = false;
  for (let i = first; i < x.steps.length; i++) {
    const step = x.steps[i]!;
    const t0 = Date.now();
    if (!startJournalled) journal.stepStarted(id, i, step.name);
    startJournalled = false;
    let attempts = 0;
    for (;;) {
      try {
        await step.run(c);
        break;
      } catch (error) {
        attempts += 1;
        // Past the point of no return, finishing is the only safe direction: retry, then ask for help.
        if (step.cleanup && attempts < 3) continue;
        journal.saveFacts(id, c.facts as Record<string, unknown>);
        journal.stepState(id, i, 'running', error instanceof Error ? error.message : String(error));
        if (step.cleanup) {
          // The switch happened: it stays `running` so that the recovery of the next start finishes the
          // cleanup (forward only); nothing is undone.
          journal.setState(id, 'running', `cleanup step ${step.name} failed: ${String(error)}`);
          throw new UnderstudyError(
            'SWITCH_STEP_FAILED',
            `Switch ${id}: ${c.to.name} serves the address, but the cleanup step ${step.name} failed`,
            {
              cause: error,
              hint: 'The next understudy command (or serve) retries the cleanup; `understudy switches <id>` shows it.',
              details: { switchId: id, step: step.name },
            },
          );
        }
        return reverse(x, i, error);
      }
    }
    const ran = Date.now() - t0;
    const next = x.steps[i + 1];
    if (heldWithoutRelease(c)) {
      // Inside the hold every write to disk delays the held requests, and LC2 serves nothing until
      // `release-hold`: the step's end and the next step's start are one transaction, written to disk
      // (with everything before it) only when the next step lets LC2 serve. Until then the journal
      // survives the manager's death (what the recovery handles), not the host's, where LC2's
      // runtime state is gone too and the switch is reversed (LC2 never served).
      const t1 = Date.now();
      journal.stepDone(id, i, c.facts as Record<string, unknown>, {
        ...(next ? { next: { seq: i + 1, name: next.name } } : {}),
        durable: next === undefined || lets(next),
      });
      c.facts.holdJournalMs = (c.facts.holdJournalMs ?? 0) + (Date.now() - t1);
      startJournalled = next !== undefined;
    } else journal.stepDone(id, i, c.facts as Record<string, unknown>);
    x.times.push({ name: step.name, ms: ran });
    c.logger.info({ switchId: id, step: step.name, ms: ran }, 'switch step done');
    if (x.afterStep) {
      try {
        await x.afterStep(step.name, id);
      } catch (error) {
        if (next?.cleanup || step.cleanup) throw error;
        // The next step's start may be journalled already: it is undone too (undos are idempotent).
        return reverse(x, startJournalled ? i + 1 : i, error);
      }
    }
  }
  // Announcements still lingering (arping waits a second after sending) have been sent; their
  // failures are logged by announceFrom, so the switch does not wait for them.
  journal.setState(id, 'switched');
  return resultOf(x, 'switched');
}

/**
 * Moves the service from `deps.from` to `deps.to` by the plan's method. Resolves when LC2 serves the
 * address and every cleanup is done. Throws without changing anything when the preflight fails
 * (SWITCH_ADDRESS_NOT_HELD, SWITCH_ADDRESS_CONFLICT, SWITCH_STANDBY_UNHEALTHY, SWITCH_PLAN_INVALID);
 * throws SWITCH_REVERSED when a step failed and the switch was undone, SWITCH_REVERSE_FAILED when the
 * undo failed too.
 */
export async function runSwitch(input: SwitchPlanInput, deps: SwitchDeps): Promise<SwitchResult> {
  const logger = deps.logger ?? silentLogger;
  const resolved = resolvePlan(input);
  await preflightSwitch(resolved, deps.from, deps.to, deps.onHealth);
  const journal = new SwitchJournal(deps.db);
  const plan = await settlePlan(resolved, deps.from, deps.to, journal);
  const note = deps.onNote ?? (() => undefined);
  const facts: SwitchFacts = {};
  if (plan.stateful && plan.cut) {
    // Before anything changes: can LC1's writes in flight finish within the hold budget?
    const gate =
      plan.method === 'instant'
        ? await cutGate(deps.from, plan.service.port, plan.cut, logger, note)
        : { cut: 'connections' as const, gateMs: 0, retries: 0 };
    Object.assign(facts, { cut: gate.cut, gateMs: gate.gateMs, gateRetries: gate.retries });
  }
  const id = newSwitchId();
  journal.begin(id, plan);
  logger.info(
    { switchId: id, method: plan.method, from: deps.from.name, to: deps.to.name },
    'switch started',
  );
  const x: Execution = {
    id,
    journal,
    steps: stepsFor(plan),
    c: {
      plan,
      from: deps.from,
      to: deps.to,
      moveNic: deps.moveNic,
      finalSync: deps.finalSync,
      prepareFinalSync: deps.prepareFinalSync,
      facts,
      logger,
      background: [],
      onHealth: deps.onHealth,
    },
    afterStep: deps.afterStep,
    times: [],
    started: Date.now(),
  };
  let result: SwitchResult;
  try {
    result = await runFrom(x, 0);
  } finally {
    x.c.armed?.quiesce?.cancel();
    x.c.armed?.release?.cancel();
  }
  const phases = describePhases(result);
  if (phases) {
    logger.info({ switchId: id, cut: result.cut, ...result.phases }, 'switch phases');
    note(phases, flatPhases(result));
  }
  return result;
}

/**
 * On manager start: every switch left `running` or `reversing` is finished (when LC2 had already
 * passed its health check) or reversed, so that the address ends on exactly one LC. Returns what was
 * done; a switch whose recovery failed is marked `failed` and reported in `errors`.
 */
export async function recoverSwitches(
  deps: RecoverDeps,
): Promise<{ recovered: SwitchResult[]; errors: UnderstudyError[] }> {
  const journal = new SwitchJournal(deps.db);
  const logger = deps.logger ?? silentLogger;
  const recovered: SwitchResult[] = [];
  const errors: UnderstudyError[] = [];
  for (const record of journal.unfinished()) {
    if (deps.claim && !deps.claim(record)) continue;
    let binding: SwitchBinding;
    try {
      binding = await deps.bind(record.plan);
    } catch (error) {
      errors.push(
        new UnderstudyError(
          'SWITCH_REVERSE_FAILED',
          `Switch ${record.id} (${record.plan.from.lc} -> ${record.plan.to.lc}) was interrupted and its LCs cannot be reached`,
          {
            cause: error,
            hint: 'Start the LCs, then restart the manager to finish or reverse the switch.',
            details: { switchId: record.id },
          },
        ),
      );
      continue;
    }
    const steps = stepsFor(record.plan);
    const x: Execution = {
      id: record.id,
      journal,
      steps,
      c: { plan: record.plan, ...binding, facts: record.facts as SwitchFacts, logger, background: [] },
      times: [],
      started: Date.now(),
    };
    logger.warn({ switchId: record.id, state: record.state }, 'recovering an interrupted switch');
    try {
      recovered.push(await recoverOne(x, record));
    } catch (error) {
      if (error instanceof UnderstudyError && error.code === 'SWITCH_REVERSED') {
        recovered.push(resultOf(x, 'reversed'));
      } else if (error instanceof UnderstudyError) errors.push(error);
      else throw error;
    }
  }
  return { recovered, errors };
}

async function recoverOne(x: Execution, record: SwitchRecord): Promise<SwitchResult> {
  const done = new Set(record.steps.filter((s) => s.state === 'done').map((s) => s.seq));
  const undone = new Set(record.steps.filter((s) => s.state === 'undone').map((s) => s.seq));
  const last = Math.max(-1, ...record.steps.map((s) => s.seq));
  const health = x.steps.findIndex((s) => s.name === 'health-after');
  // Once clients may have opened connections to LC2 (LC2 answers for the address, or LC1 passes new
  // flows to it), reversing would reset them: a crash after that point is finished, not reversed.
  // (runFrom still reverses if LC2 then fails its health check.)
  const noReturn = x.steps.findIndex(
    (s) => s.name === 'lc2-takes-address' || s.name === 'lc1-pass-new-flows',
  );
  if (record.state === 'running' && (done.has(health) || (noReturn >= 0 && done.has(noReturn)))) {
    const first = x.steps.findIndex((_, i) => !done.has(i));
    return runFrom(x, first === -1 ? x.steps.length : first);
  }
  return reverse(
    x,
    last,
    new Error(`the manager stopped during step ${x.steps[last]?.name ?? '(none)'}`),
    undone,
  );
}
