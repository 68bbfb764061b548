/**
 * The switch journal: one row per switch and one per step, written before and after each step, so
 * that after a crash of the manager `recoverSwitches` knows exactly how far a switch got.
 */
import { withoutWaitingForDisk, type Db, type ModuleSchema } from '../store/index.ts';
import type { SwitchPlan } from './types.ts';

/**
 * State of a switch:
 * - `running`: steps are being done forward.
 * - `reversing`: a step failed (or recovery decided so); done steps are being undone in reverse.
 * - `switched`: LC2 serves the address; every step is done.
 * - `reversed`: every done step was undone; LC1 serves the address as before.
 * - `failed`: an undo failed too; the journal's steps and error say what is left to fix by hand.
 */
export type SwitchState = 'running' | 'reversing' | 'switched' | 'reversed' | 'failed';

/**
 * State of a step: `running` (started, not known to be finished), `done`, `undoing`, `undone`
 * (its effect is removed), `undo-failed`.
 */
export type StepState = 'running' | 'done' | 'undoing' | 'undone' | 'undo-failed';

export const switchSchema: ModuleSchema = {
  module: 'switch',
  migrations: [
    {
      version: 1,
      description: 'switch journal: switches and their steps',
      up: `
        CREATE TABLE switches (
          id TEXT PRIMARY KEY,
          method TEXT NOT NULL,
          from_lc TEXT NOT NULL,
          to_lc TEXT NOT NULL,
          plan TEXT NOT NULL,
          facts TEXT NOT NULL DEFAULT '{}',
          state TEXT NOT NULL,
          error TEXT,
          started_at TEXT NOT NULL,
          finished_at TEXT
        );
        CREATE TABLE switch_steps (
          switch_id TEXT NOT NULL REFERENCES switches(id),
          seq INTEGER NOT NULL,
          name TEXT NOT NULL,
          state TEXT NOT NULL,
          started_at TEXT NOT NULL,
          finished_at TEXT,
          error TEXT,
          PRIMARY KEY (switch_id, seq)
        );`,
    },
  ],
};

export interface SwitchRecord {
  id: string;
  plan: SwitchPlan;
  facts: Record<string, unknown>;
  state: SwitchState;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
  steps: { seq: number; name: string; state: StepState; error: string | null }[];
}

interface SwitchRow {
  id: string;
  plan: string;
  facts: string;
  state: SwitchState;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

const now = (): string => new Date().toISOString();

export class SwitchJournal {
  constructor(private readonly db: Db) {}

  begin(id: string, plan: SwitchPlan): void {
    this.db
      .prepare(
        'INSERT INTO switches (id, method, from_lc, to_lc, plan, state, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(id, plan.method, plan.from.lc, plan.to.lc, JSON.stringify(plan), 'running', now());
  }

  setState(id: string, state: SwitchState, error?: string): void {
    const final = state === 'switched' || state === 'reversed' || state === 'failed';
    this.db
      .prepare('UPDATE switches SET state = ?, error = COALESCE(?, error), finished_at = ? WHERE id = ?')
      .run(state, error ?? null, final ? now() : null, id);
  }

  saveFacts(id: string, facts: Record<string, unknown>): void {
    this.db.prepare('UPDATE switches SET facts = ? WHERE id = ?').run(JSON.stringify(facts), id);
  }

  /**
   * The step is done, with the facts it learned, and (`next`) the next step started: one transaction.
   * `durable: false` writes it without waiting for the disk (SQLite's WAL with `synchronous = NORMAL`):
   * it survives the death of the process (a kill), not a crash of the host, until the next durable
   * write, which carries it to the disk.
   */
  stepDone(
    id: string,
    seq: number,
    facts: Record<string, unknown>,
    options: { next?: { seq: number; name: string }; durable?: boolean } = {},
  ): void {
    const write = (): void =>
      this.db.transaction(() => {
        this.saveFacts(id, facts);
        this.stepState(id, seq, 'done');
        if (options.next) this.stepStarted(id, options.next.seq, options.next.name);
      })();
    if (options.durable ?? true) write();
    else withoutWaitingForDisk(this.db, write);
  }

  stepStarted(id: string, seq: number, name: string): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO switch_steps (switch_id, seq, name, state, started_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(id, seq, name, 'running', now());
  }

  stepState(id: string, seq: number, state: StepState, error?: string): void {
    this.db
      .prepare(
        'UPDATE switch_steps SET state = ?, finished_at = ?, error = ? WHERE switch_id = ? AND seq = ?',
      )
      .run(state, now(), error ?? null, id, seq);
  }

  get(id: string): SwitchRecord | undefined {
    const row = this.db.prepare('SELECT * FROM switches WHERE id = ?').get(id) as SwitchRow | undefined;
    return row ? this.toRecord(row) : undefined;
  }

  /** Switches a crash left in `running` or `reversing`. */
  unfinished(): SwitchRecord[] {
    const rows = this.db
      .prepare("SELECT * FROM switches WHERE state IN ('running', 'reversing') ORDER BY started_at")
      .all() as SwitchRow[];
    return rows.map((r) => this.toRecord(r));
  }

  list(limit = 20): SwitchRecord[] {
    const rows = this.db
      .prepare('SELECT * FROM switches ORDER BY started_at DESC LIMIT ?')
      .all(limit) as SwitchRow[];
    return rows.map((r) => this.toRecord(r));
  }

  /**
   * Addresses (hosts, without prefix) that finished switches added to `lc` as LC1's new address (it
   * held no other): spares that LC may let go once it serves again.
   */
  sparesGivenTo(lc: string): Set<string> {
    const rows = this.db
      .prepare("SELECT plan, facts FROM switches WHERE from_lc = ? AND state = 'switched'")
      .all(lc) as { plan: string; facts: string }[];
    const spares = new Set<string>();
    for (const row of rows) {
      const plan = JSON.parse(row.plan) as SwitchPlan;
      const facts = JSON.parse(row.facts) as { lc1HadNewAddress?: boolean };
      if (facts.lc1HadNewAddress === false && plan.from.newAddress)
        spares.add(plan.from.newAddress.split('/')[0] ?? '');
    }
    return spares;
  }

  private toRecord(row: SwitchRow): SwitchRecord {
    const steps = this.db
      .prepare('SELECT seq, name, state, error FROM switch_steps WHERE switch_id = ? ORDER BY seq')
      .all(row.id) as SwitchRecord['steps'];
    return {
      id: row.id,
      plan: JSON.parse(row.plan) as SwitchPlan,
      facts: JSON.parse(row.facts) as Record<string, unknown>,
      state: row.state,
      error: row.error,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      steps,
    };
  }
}
