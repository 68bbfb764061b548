/**
 * The agent's own durable record of the work it took, in a SQLite file in its state directory.
 * It is written before a run starts and when it ends, so that with the control plane down (or the
 * agent restarted) a run is neither repeated nor forgotten: a started entry is resumed through the
 * host's own durable patch run, a finished one is reported when the control plane is back.
 *
 * Entry states:
 * - started:  the run for this work was started on this host (it may be in progress)
 * - finished: the run ended; `outcome` and `result` wait to be reported
 * - reported: the control plane has the outcome
 */
import type { Db, ModuleSchema } from '../../store/index.ts';

/**
 * The journal's table, in the agent's own store (`journal.db` in its directory). `IF NOT EXISTS`: a
 * journal written before the table had a migration opens unchanged.
 */
export const agentJournalSchema: ModuleSchema = {
  module: 'agent-journal',
  migrations: [
    {
      version: 1,
      description: 'the work this agent took and its state',
      up: `CREATE TABLE IF NOT EXISTS agent_work (
        work_id INTEGER PRIMARY KEY, lc TEXT NOT NULL, kind TEXT NOT NULL, patches TEXT NOT NULL,
        state TEXT NOT NULL, outcome TEXT, result TEXT, finished_at TEXT)`,
    },
  ],
};

export type JournalState = 'started' | 'finished' | 'reported';
export type Outcome = 'succeeded' | 'failed' | 'reverted';

export interface JournalEntry {
  workId: number;
  lc: string;
  kind: 'patch' | 'rollback';
  patches: string[];
  state: JournalState;
  outcome?: Outcome;
  result?: Record<string, unknown>;
  finishedAt?: string;
}

interface Row {
  work_id: number;
  lc: string;
  kind: 'patch' | 'rollback';
  patches: string;
  state: JournalState;
  outcome: Outcome | null;
  result: string | null;
  finished_at: string | null;
}

export class AgentJournal {
  /** `db` is the agent's journal store, opened with `agentJournalSchema`; close() closes it. */
  constructor(private readonly db: Db) {}

  get(workId: number): JournalEntry | undefined {
    const row = this.db.prepare('SELECT * FROM agent_work WHERE work_id = ?').get(workId) as Row | undefined;
    return row ? toEntry(row) : undefined;
  }

  /** Records that the run for this work starts now; false when it was already started (never run twice). */
  start(entry: Pick<JournalEntry, 'workId' | 'lc' | 'kind' | 'patches'>): boolean {
    const r = this.db
      .prepare(
        `INSERT OR IGNORE INTO agent_work (work_id, lc, kind, patches, state) VALUES (?, ?, ?, ?, 'started')`,
      )
      .run(entry.workId, entry.lc, entry.kind, JSON.stringify(entry.patches));
    return r.changes === 1;
  }

  finish(workId: number, outcome: Outcome, result: Record<string, unknown>, at: Date): void {
    this.db
      .prepare(
        `UPDATE agent_work SET state = 'finished', outcome = ?, result = ?, finished_at = ? WHERE work_id = ? AND state = 'started'`,
      )
      .run(outcome, JSON.stringify(result), at.toISOString(), workId);
  }

  markReported(workId: number): void {
    this.db.prepare(`UPDATE agent_work SET state = 'reported' WHERE work_id = ?`).run(workId);
  }

  inState(state: JournalState): JournalEntry[] {
    return (
      this.db.prepare('SELECT * FROM agent_work WHERE state = ? ORDER BY work_id').all(state) as Row[]
    ).map(toEntry);
  }

  /** Patches that switched (succeeded) at or after `since`, whatever their report state. */
  switchedSince(since: Date): JournalEntry[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM agent_work WHERE kind = 'patch' AND outcome = 'succeeded' AND finished_at >= ? ORDER BY work_id`,
        )
        .all(since.toISOString()) as Row[]
    ).map(toEntry);
  }

  close(): void {
    this.db.close();
  }
}

function toEntry(row: Row): JournalEntry {
  return {
    workId: row.work_id,
    lc: row.lc,
    kind: row.kind,
    patches: JSON.parse(row.patches) as string[],
    state: row.state,
    ...(row.outcome ? { outcome: row.outcome } : {}),
    ...(row.result ? { result: JSON.parse(row.result) as Record<string, unknown> } : {}),
    ...(row.finished_at ? { finishedAt: row.finished_at } : {}),
  };
}
