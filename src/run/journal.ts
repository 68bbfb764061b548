/** The durable record of runs and their steps. Every change is written before the next action. */
import crypto from 'node:crypto';
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { ResolvedRunOptions, RunFacts, RunRecord, RunState, StepRecord, StepState } from './types.ts';

interface RunRow {
  id: string;
  lc: string;
  standby: string | null;
  options: string;
  state: RunState;
  facts: string;
  error: string | null;
  owner_pid: number | null;
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

export class RunJournal {
  constructor(private readonly db: Db) {}

  create(options: ResolvedRunOptions, steps: readonly string[]): string {
    const id = `r${new Date().toISOString().slice(2, 10).replaceAll('-', '')}-${crypto.randomBytes(3).toString('hex')}`;
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO runs (id, lc, options, state, owner_pid, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(id, options.lc, JSON.stringify(options), 'running', process.pid, now(), now());
      steps.forEach((name, seq) =>
        this.db
          .prepare("INSERT INTO run_steps (run_id, seq, name, state) VALUES (?, ?, ?, 'pending')")
          .run(id, seq, name),
      );
    })();
    return id;
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
      output: s.output === null ? null : (JSON.parse(s.output) as unknown),
      error: s.error,
    }));
    return {
      id: row.id,
      lc: row.lc,
      standby: row.standby,
      options: JSON.parse(row.options) as ResolvedRunOptions,
      state: row.state,
      facts: JSON.parse(row.facts) as RunFacts,
      error: row.error,
      ownerPid: row.owner_pid,
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

  /** Runs that are not finished (running or rolling back). */
  unfinished(): RunRecord[] {
    return (
      this.db
        .prepare("SELECT id FROM runs WHERE state IN ('running', 'rolling-back') ORDER BY created_at")
        .all() as { id: string }[]
    ).map((r) => this.get(r.id));
  }

  /** LCs held by unfinished runs (as LC or standby). */
  busyLcs(): Set<string> {
    const busy = new Set<string>();
    for (const run of this.unfinished()) {
      busy.add(run.lc);
      if (run.standby) busy.add(run.standby);
    }
    return busy;
  }

  setState(id: string, state: RunState, error?: string): void {
    const finished = state === 'running' || state === 'rolling-back' ? null : now();
    this.db
      .prepare('UPDATE runs SET state = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?')
      .run(state, error ?? null, now(), finished, id);
  }

  setStandby(id: string, standby: string): void {
    this.db.prepare('UPDATE runs SET standby = ?, updated_at = ? WHERE id = ?').run(standby, now(), id);
  }

  saveFacts(id: string, facts: RunFacts): void {
    this.db
      .prepare('UPDATE runs SET facts = ?, updated_at = ? WHERE id = ?')
      .run(JSON.stringify(facts), now(), id);
  }

  /** Takes the run over for this process (after the previous owner died). */
  claim(id: string): void {
    this.db.prepare('UPDATE runs SET owner_pid = ?, updated_at = ? WHERE id = ?').run(process.pid, now(), id);
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
        options.output === undefined ? null : JSON.stringify(options.output),
        options.error ?? null,
        id,
        seq,
      );
  }
}
