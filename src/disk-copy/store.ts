/**
 * Copy jobs and their write history in the store (module 'disk-copy'), so that a run report, the
 * CLI (`understudy disk history <id>`) and the dashboard can show what was written during a copy.
 */
import { UnderstudyError, processOwner } from '../core/index.ts';
import { liveLease, takeLeases, type Db, type ModuleSchema } from '../store/index.ts';
import type { HistoryRecord, HistorySummary } from './history.ts';
import type { CopyMode, CopyResult } from './types.ts';

export const diskCopySchema: ModuleSchema = {
  module: 'disk-copy',
  migrations: [
    {
      version: 1,
      description: 'copy jobs and their write history',
      up: `
        CREATE TABLE copy_jobs (
          id TEXT PRIMARY KEY,
          label TEXT,
          source TEXT NOT NULL,
          destination TEXT NOT NULL,
          mode TEXT NOT NULL,
          state TEXT NOT NULL,
          source_stage TEXT,
          destination_stage TEXT,
          started_at TEXT NOT NULL,
          finished_at TEXT,
          cut_at TEXT,
          freeze_ms REAL,
          convergence TEXT,
          throttled_ms REAL,
          passes INTEGER NOT NULL DEFAULT 0,
          bytes_sent INTEGER NOT NULL DEFAULT 0,
          history_writes INTEGER NOT NULL DEFAULT 0,
          history_files INTEGER NOT NULL DEFAULT 0,
          history_bytes INTEGER NOT NULL DEFAULT 0,
          history_creates INTEGER NOT NULL DEFAULT 0,
          history_renames INTEGER NOT NULL DEFAULT 0,
          history_deletes INTEGER NOT NULL DEFAULT 0,
          history_passes INTEGER NOT NULL DEFAULT 0,
          verified_digest TEXT,
          error_code TEXT,
          error_message TEXT
        );
        CREATE TABLE copy_history (
          job_id TEXT NOT NULL REFERENCES copy_jobs(id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          pass INTEGER NOT NULL,
          at TEXT NOT NULL,
          op TEXT NOT NULL,
          path TEXT NOT NULL,
          path_to TEXT,
          offset INTEGER,
          length INTEGER,
          PRIMARY KEY (job_id, seq)
        );`,
    },
    {
      version: 2,
      description: 'sync bases: the snapshots an incremental sync between two disks starts from',
      up: `
        CREATE TABLE sync_bases (
          pair TEXT PRIMARY KEY,
          disk_a TEXT NOT NULL,
          base_a TEXT NOT NULL,
          disk_b TEXT NOT NULL,
          base_b TEXT NOT NULL,
          generation INTEGER NOT NULL,
          state TEXT NOT NULL,
          pending TEXT NOT NULL DEFAULT '[]',
          updated_at TEXT NOT NULL
        );`,
    },
    {
      version: 3,
      description: 'sync bases: the paths a final sync wrote into a disk after its base was taken',
      up: `ALTER TABLE sync_bases ADD COLUMN ahead TEXT;`,
    },
    {
      version: 4,
      description: 'sync bases: the transaction after which each disk of a pair has changes to carry',
      up: `ALTER TABLE sync_bases ADD COLUMN transids TEXT;`,
    },
  ],
};

/**
 * - `running`: copying (or the manager died while copying: its stages are named in the row);
 * - `succeeded`: the destination is in place (and verified when asked);
 * - `failed`, `cancelled`: the destination and every snapshot were removed; the source is untouched.
 */
export type CopyJobState = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface CopyJob {
  id: string;
  label: string | null;
  source: string;
  destination: string;
  mode: CopyMode;
  state: CopyJobState;
  sourceStage: string | null;
  destinationStage: string | null;
  startedAt: string;
  finishedAt: string | null;
  cutAt: string | null;
  freezeMs: number | null;
  convergence: string | null;
  throttledMs: number | null;
  passes: number;
  bytesSent: number;
  history: HistorySummary;
  verifiedDigest: string | null;
  error: { code: string; message: string } | null;
}

interface JobRow {
  id: string;
  label: string | null;
  source: string;
  destination: string;
  mode: CopyMode;
  state: CopyJobState;
  source_stage: string | null;
  destination_stage: string | null;
  started_at: string;
  finished_at: string | null;
  cut_at: string | null;
  freeze_ms: number | null;
  convergence: string | null;
  throttled_ms: number | null;
  passes: number;
  bytes_sent: number;
  history_writes: number;
  history_files: number;
  history_bytes: number;
  history_creates: number;
  history_renames: number;
  history_deletes: number;
  history_passes: number;
  verified_digest: string | null;
  error_code: string | null;
  error_message: string | null;
}

export function insertCopyJob(
  db: Db,
  job: {
    id: string;
    label?: string;
    source: string;
    destination: string;
    mode: CopyMode;
    sourceStage: string;
    destinationStage: string | null;
  },
  owner: string = processOwner().id,
): void {
  // A job id used again (a patch-run step re-run after a crash) starts a fresh record. The job is
  // leased to its process: recovery leaves it alone while that process lives.
  const claim = db.transaction(() => {
    const held = takeLeases(db, [copyLease(job.id)], owner, `disk copy ${job.id}`);
    if (held)
      throw new UnderstudyError('DISK_COPY_BUSY', `The copy job ${job.id} is running in another process`, {
        hint: `Wait for it to end (process ${held.owner.split(':')[0] ?? '?'}), or use another job id.`,
      });
    db.prepare('DELETE FROM copy_history WHERE job_id = ?').run(job.id);
    db.prepare('DELETE FROM copy_jobs WHERE id = ?').run(job.id);
    db.prepare(
      `INSERT INTO copy_jobs (id, label, source, destination, mode, state, source_stage, destination_stage, started_at)
       VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)`,
    ).run(
      job.id,
      job.label ?? null,
      job.source,
      job.destination,
      job.mode,
      job.sourceStage,
      job.destinationStage,
      new Date().toISOString(),
    );
  });
  claim.immediate();
}

/** The lease that marks a copy job as being made by a live process. */
export const copyLease = (jobId: string): string => `copy:${jobId}`;

/** Whether a live process (other than a dead owner) is still making the copy job. */
export function copyJobOwned(db: Db, jobId: string): boolean {
  return liveLease(db, copyLease(jobId)) !== undefined;
}

/** Appends history records after the ones already stored for the job. */
export function appendCopyHistory(
  db: Db,
  jobId: string,
  firstSeq: number,
  records: readonly HistoryRecord[],
): void {
  const insert = db.prepare(
    'INSERT INTO copy_history (job_id, seq, pass, at, op, path, path_to, offset, length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    records.forEach((r, i) =>
      insert.run(
        jobId,
        firstSeq + i,
        r.pass,
        r.at,
        r.op,
        r.path,
        r.pathTo ?? null,
        r.offset ?? null,
        r.length ?? null,
      ),
    );
  })();
}

export function finishCopyJob(db: Db, jobId: string, result: CopyResult): void {
  db.prepare('DELETE FROM leases WHERE resource = ?').run(copyLease(jobId));
  const h = result.history;
  db.prepare(
    `UPDATE copy_jobs SET state = 'succeeded', finished_at = ?, cut_at = ?, freeze_ms = ?, convergence = ?, throttled_ms = ?,
       passes = ?, bytes_sent = ?, history_writes = ?, history_files = ?, history_bytes = ?, history_creates = ?,
       history_renames = ?, history_deletes = ?, history_passes = ?, verified_digest = ? WHERE id = ?`,
  ).run(
    new Date().toISOString(),
    result.cutAt,
    result.freezeMs,
    result.convergence,
    result.throttledMs,
    result.passes.length,
    result.bytesSent,
    h.writes,
    h.files,
    h.bytes,
    h.creates,
    h.renames,
    h.deletes,
    h.passes,
    result.verification?.digest ?? null,
    jobId,
  );
}

export function failCopyJob(
  db: Db,
  jobId: string,
  state: 'failed' | 'cancelled',
  error: { code: string; message: string },
): void {
  db.prepare('DELETE FROM leases WHERE resource = ?').run(copyLease(jobId));
  db.prepare(
    'UPDATE copy_jobs SET state = ?, finished_at = ?, error_code = ?, error_message = ? WHERE id = ?',
  ).run(state, new Date().toISOString(), error.code, error.message, jobId);
}

function toJob(row: JobRow): CopyJob {
  return {
    id: row.id,
    label: row.label,
    source: row.source,
    destination: row.destination,
    mode: row.mode,
    state: row.state,
    sourceStage: row.source_stage,
    destinationStage: row.destination_stage,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    cutAt: row.cut_at,
    freezeMs: row.freeze_ms,
    convergence: row.convergence,
    throttledMs: row.throttled_ms,
    passes: row.passes,
    bytesSent: row.bytes_sent,
    history: {
      writes: row.history_writes,
      files: row.history_files,
      bytes: row.history_bytes,
      creates: row.history_creates,
      renames: row.history_renames,
      deletes: row.history_deletes,
      passes: row.history_passes,
      truncated: false,
    },
    verifiedDigest: row.verified_digest,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
  };
}

/** Throws DISK_COPY_NOT_FOUND when there is no such job. */
export function getCopyJob(db: Db, jobId: string): CopyJob {
  const row = db.prepare('SELECT * FROM copy_jobs WHERE id = ?').get(jobId) as JobRow | undefined;
  if (!row) throw new UnderstudyError('DISK_COPY_NOT_FOUND', `No disk copy job ${jobId}`);
  return toJob(row);
}

export function listCopyJobs(db: Db, options: { limit?: number } = {}): CopyJob[] {
  const rows = db
    .prepare('SELECT * FROM copy_jobs ORDER BY started_at DESC LIMIT ?')
    .all(options.limit ?? 50) as JobRow[];
  return rows.map(toJob);
}

export function listCopyHistory(
  db: Db,
  jobId: string,
  options: { limit?: number; offset?: number } = {},
): HistoryRecord[] {
  const rows = db
    .prepare(
      'SELECT pass, at, op, path, path_to, offset, length FROM copy_history WHERE job_id = ? ORDER BY seq LIMIT ? OFFSET ?',
    )
    .all(jobId, options.limit ?? -1, options.offset ?? 0) as {
    pass: number;
    at: string;
    op: HistoryRecord['op'];
    path: string;
    path_to: string | null;
    offset: number | null;
    length: number | null;
  }[];
  return rows.map((r) => {
    const record: HistoryRecord = { pass: r.pass, at: r.at, op: r.op, path: r.path };
    if (r.path_to !== null) record.pathTo = r.path_to;
    if (r.offset !== null) record.offset = r.offset;
    if (r.length !== null) record.length = r.length;
    return record;
  });
}
