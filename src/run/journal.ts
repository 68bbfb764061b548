/** The durable record of runs and their steps. Every change is written before the next action. */
import crypto from 'node:crypto';
import { UnderstudyError, isOwnerAlive, processOwner } from '../core/index.ts';
import { releaseLeases, takeLeases, type Db } from '../store/index.ts';
import { parseFacts, issuePath, runOptionsSchema, type RecordProblem, type RunFacts } from './facts.ts';
import { outputKindOf, stepOutputs } from './step-outputs.ts';
import type { ResolvedRunOptions, RunRecord, RunState, StepRecord, StepState } from './types.ts';

interface RunRow {
  id: string;
  lc: string;
  standby: string | null;
  options: string;
  state: RunState;
  facts: string;
  error: string | null;
  owner_pid: number | null;
  owner: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

interface StepRow {
  seq: number;
  name: string;
  state: StepState;
  attempts: number;
  started_at: string | null;
  ended_at: string | null;
  duration_ms: number | null;
  output: string | null;
  error: string | null;
}

const now = (): string => new Date().toISOString();

/** RUN_RECORD_INVALID for a field of run `runId` that does not validate. */
function recordInvalid(runId: string, problem: RecordProblem, cause?: unknown): UnderstudyError {
  return new UnderstudyError(
    'RUN_RECORD_INVALID',
    `The record of run ${runId} is invalid: the field "${problem.field}" written by step ${problem.step}: ${problem.problem}`,
    {
      hint: `The store was changed outside understudy or by an incompatible version. Restore the state directory from a backup, or correct "${problem.field}" of run ${runId} in the store (table runs, column facts; table run_steps, column output).`,
      details: { runId, ...problem },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/** Parses a JSON column of run `runId`; RUN_RECORD_INVALID names the step and field when it is not JSON. */
function parseJson(runId: string, text: string, where: { step: string; field: string }): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw recordInvalid(runId, { ...where, problem: 'not JSON' }, error);
  }
}

/** A step's output as read back, validated against the step's schema. */
function readOutput(runId: string, step: string, text: string | null): unknown {
  if (text === null) return null;
  const raw = parseJson(runId, text, { step, field: 'output' });
  const kind = outputKindOf(step);
  // null: the step has no output (it failed, or was undone after failing).
  if (!kind || raw === null) return raw;
  const parsed = stepOutputs[kind].safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw recordInvalid(runId, {
    step,
    field: `output${issue && issue.path.length > 0 ? `.${issuePath(issue.path)}` : ''}`,
    problem: issue?.message ?? 'invalid',
  });
}

/** The run's options as read back (as journalled when it started). */
function readOptions(runId: string, text: string): ResolvedRunOptions {
  const parsed = runOptionsSchema.safeParse(parseJson(runId, text, { step: '(the run)', field: 'options' }));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw recordInvalid(runId, {
    step: '(the start of the run)',
    field: `options${issue && issue.path.length > 0 ? `.${issuePath(issue.path)}` : ''}`,
    problem: issue?.message ?? 'invalid',
  });
}

/** The run's facts as read back, validated against the schemas of the steps that write them. */
function readFacts(runId: string, text: string): RunFacts {
  const parsed = parseFacts(parseJson(runId, text, { step: '(the run)', field: 'facts' }));
  if ('problem' in parsed) throw recordInvalid(runId, parsed.problem);
  return parsed.facts;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class RunJournal {
  constructor(private readonly db: Db) {}

  /**
   * Records a new run of `options.lc` owned by `owner`. The busy check and the claim of the LC are one
   * transaction: throws RUN_BUSY when an unfinished run holds the LC or a live owner leases it.
   */
  create(options: ResolvedRunOptions, steps: readonly string[], owner = processOwner().id): string {
    const id = `r${new Date().toISOString().slice(2, 10).replaceAll('-', '')}-${crypto.randomBytes(3).toString('hex')}`;
    this.db
      .transaction(() => {
        this.claimLcs([options.lc], owner, id);
        this.db
          .prepare(
            'INSERT INTO runs (id, lc, options, state, owner_pid, owner, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
          )
          .run(id, options.lc, JSON.stringify(options), 'running', process.pid, owner, now(), now());
        steps.forEach((name, seq) =>
          this.db
            .prepare("INSERT INTO run_steps (run_id, seq, name, state) VALUES (?, ?, ?, 'pending')")
            .run(id, seq, name),
        );
      })
      .immediate();
    return id;
  }

  /** Throws RUN_BUSY unless `owner` may take the LCs for run `runId`; then takes their leases. */
  private claimLcs(lcs: readonly string[], owner: string, runId: string): void {
    const busy = this.busyLcs(runId);
    for (const lc of lcs) {
      const other = busy.get(lc);
      if (other) {
        const step = other.steps.find((s) => s.state === 'running' || s.state === 'pending')?.name;
        throw new UnderstudyError(
          'RUN_BUSY',
          `"${lc}" is already part of patch run ${other.id} (${lc === other.lc ? 'its LC' : 'its standby'}, ${other.state}${step ? ` at ${step}` : ''}, started ${other.createdAt}): one run at a time per LC`,
          {
            hint: `\`understudy run show ${other.id}\` shows how far it got; wait for it, resume it (\`understudy run resume ${other.id}\`) or roll it back.`,
            details: { runId: other.id, lc },
          },
        );
      }
    }
    const held = takeLeases(
      this.db,
      lcs.map((lc) => `lc:${lc}`),
      owner,
      `run ${runId}`,
    );
    if (held)
      throw new UnderstudyError(
        'RUN_BUSY',
        `"${held.resource.slice(3)}" is in use by a live process (${held.purpose}, pid ${held.owner.split(':')[0] ?? '?'})`,
        { hint: 'Wait for it to finish; `understudy run list` and `understudy switches` show what runs.' },
      );
  }

  /** LCs leased by a live owner other than `owner` (a run or a switch in another process). */
  leasedByOthers(owner: string): Set<string> {
    const rows = this.db.prepare("SELECT resource, owner FROM leases WHERE resource LIKE 'lc:%'").all() as {
      resource: string;
      owner: string;
    }[];
    return new Set(
      rows.filter((r) => r.owner !== owner && isOwnerAlive(r.owner)).map((r) => r.resource.slice(3)),
    );
  }

  /** Appends the rollback's steps and marks the run rolling back, in one transaction. */
  beginRollback(id: string, steps: readonly string[]): void {
    this.db.transaction(() => {
      this.appendSteps(id, steps);
      this.setState(id, 'rolling-back');
    })();
  }

  /** Appends steps (the rollback's) to a run. */
  appendSteps(id: string, steps: readonly string[]): void {
    const base = (
      this.db.prepare('SELECT COUNT(*) AS n FROM run_steps WHERE run_id = ?').get(id) as { n: number }
    ).n;
    steps.forEach((name, i) =>
      this.db
        .prepare("INSERT INTO run_steps (run_id, seq, name, state) VALUES (?, ?, ?, 'pending')")
        .run(id, base + i, name),
    );
  }

  get(id: string): RunRecord {
    const row = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    if (!row) throw new UnderstudyError('RUN_NOT_FOUND', `There is no patch run "${id}"`);
    const steps = (
      this.db.prepare('SELECT * FROM run_steps WHERE run_id = ? ORDER BY seq').all(id) as StepRow[]
    ).map((s): StepRecord => ({
      seq: s.seq,
      name: s.name,
      state: s.state,
      attempts: s.attempts,
      startedAt: s.started_at,
      endedAt: s.ended_at,
      durationMs: s.duration_ms,
      output: readOutput(id, s.name, s.output),
      error: s.error,
    }));
    return {
      id: row.id,
      lc: row.lc,
      standby: row.standby,
      options: readOptions(id, row.options),
      state: row.state,
      facts: readFacts(id, row.facts),
      error: row.error,
      ownerPid: row.owner_pid,
      owner: row.owner,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      finishedAt: row.finished_at,
      steps,
    };
  }

  list(): RunRecord[] {
    return (this.db.prepare('SELECT id FROM runs ORDER BY created_at DESC').all() as { id: string }[]).map(
      (r) => this.get(r.id),
    );
  }

  /** The ids of the runs whose facts record a whole-tree check (tree-check.ts), oldest first. */
  idsWithTreeChecks(): string[] {
    return (
      this.db.prepare(`SELECT id FROM runs WHERE facts LIKE '%"treeChecks"%' ORDER BY created_at`).all() as {
        id: string;
      }[]
    ).map((r) => r.id);
  }

  /** The ids of the runs that are not finished (running or rolling back), oldest first. */
  unfinishedIds(): string[] {
    return (
      this.db
        .prepare("SELECT id FROM runs WHERE state IN ('running', 'rolling-back') ORDER BY created_at")
        .all() as { id: string }[]
    ).map((r) => r.id);
  }

  /** Runs that are not finished (running or rolling back). */
  unfinished(): RunRecord[] {
    return this.unfinishedIds().map((id) => this.get(id));
  }

  /** LCs held by unfinished runs (as LC or standby), other than run `except`, with the run holding each. */
  busyLcs(except?: string): Map<string, RunRecord> {
    const busy = new Map<string, RunRecord>();
    for (const run of this.unfinished()) {
      if (run.id === except) continue;
      busy.set(run.lc, run);
      if (run.standby) busy.set(run.standby, run);
    }
    return busy;
  }

  /** Sets the state; a resting state (not running, not rolling back) gives up the run's LC leases. */
  setState(id: string, state: RunState, error?: string): void {
    const finished = state === 'running' || state === 'rolling-back' ? null : now();
    this.db.transaction(() => {
      this.db
        .prepare('UPDATE runs SET state = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?')
        .run(state, error ?? null, now(), finished, id);
      if (finished) {
        const run = this.get(id);
        if (run.owner) releaseLeases(this.db, this.lcsOf(run), run.owner);
      }
    })();
  }

  private lcsOf(run: RunRecord): string[] {
    return [run.lc, ...(run.standby ? [run.standby] : [])].map((lc) => `lc:${lc}`);
  }

  /** Chooses the standby: the busy check and the claim of the standby are one transaction (RUN_BUSY). */
  setStandby(id: string, standby: string, owner = processOwner().id): void {
    this.db
      .transaction(() => {
        this.claimLcs([standby], owner, id);
        this.db.prepare('UPDATE runs SET standby = ?, updated_at = ? WHERE id = ?').run(standby, now(), id);
      })
      .immediate();
  }

  saveFacts(id: string, facts: RunFacts): void {
    this.db
      .prepare('UPDATE runs SET facts = ?, updated_at = ? WHERE id = ?')
      .run(JSON.stringify(facts), now(), id);
  }

  /**
   * Takes the run over for `owner` (after the previous owner died), with its LCs' leases, in one
   * transaction. Throws RUN_BUSY when a live owner drives it.
   */
  claim(id: string, owner = processOwner().id): void {
    this.db
      .transaction(() => {
        const run = this.get(id);
        const moving = run.state === 'running' || run.state === 'rolling-back';
        if (moving && run.owner && run.owner !== owner && isOwnerAlive(run.owner))
          throw new UnderstudyError('RUN_BUSY', `Run ${id} is being driven by a live process`, {
            hint: `Wait for it (pid ${run.owner.split(':')[0] ?? '?'}); \`understudy run show ${id}\` shows how far it got.`,
          });
        this.claimLcs([run.lc, ...(run.standby ? [run.standby] : [])], owner, id);
        this.db
          .prepare('UPDATE runs SET owner_pid = ?, owner = ?, updated_at = ? WHERE id = ?')
          .run(process.pid, owner, now(), id);
      })
      .immediate();
  }

  /**
   * Hands the run to recovery: it keeps its state and steps, but has no owner and its LC leases are
   * given up, so that the next manager to start takes it over at once.
   */
  handOver(id: string, owner: string): void {
    this.db.transaction(() => {
      const run = this.get(id);
      if (run.owner !== owner) return;
      releaseLeases(this.db, this.lcsOf(run), owner);
      this.db
        .prepare('UPDATE runs SET owner = NULL, owner_pid = NULL, updated_at = ? WHERE id = ?')
        .run(now(), id);
    })();
  }

  /** Whether the run's owner is alive (a run of a process that died is left to recovery). */
  ownerAlive(run: RunRecord): boolean {
    return run.owner ? isOwnerAlive(run.owner) : run.ownerPid !== null && pidAlive(run.ownerPid);
  }

  stepStarted(id: string, seq: number): void {
    this.db
      .prepare(
        "UPDATE run_steps SET state = 'running', attempts = attempts + 1, started_at = ?, ended_at = NULL, error = NULL WHERE run_id = ? AND seq = ?",
      )
      .run(now(), id, seq);
  }

  stepEnded(
    id: string,
    seq: number,
    state: StepState,
    options: { durationMs: number; output?: unknown; error?: string },
  ): void {
    this.db
      .prepare(
        'UPDATE run_steps SET state = ?, ended_at = ?, duration_ms = ?, output = ?, error = ? WHERE run_id = ? AND seq = ?',
      )
      .run(
        state,
        now(),
        Math.round(options.durationMs),
        options.output === undefined || options.output === null ? null : JSON.stringify(options.output),
        options.error ?? null,
        id,
        seq,
      );
  }
}
