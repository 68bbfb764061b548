/**
 * The event log: every event is written to the store first (so a client that reconnects with the last
 * id it saw gets what it missed, and events written by another process are seen too), then announced
 * to the subscribers of this process.
 */
import { EventEmitter } from 'node:events';
import type { Db } from '../store/index.ts';

/**
 * Kinds of event:
 * - `run.step`: a step of a patch run started, ended (`done`/`failed`) or was undone; `durationMs` when it ended.
 * - `run.note`: progress inside a step (copy passes and bytes, switch phases, health checks).
 * - `run.state`: a run changed state (started, switched, failed, rolled back, cancelled).
 * - `switch.phase`: a phase of a switch started on its own (`understudy switch`) ended, with its duration.
 * - `switch.state`: such a switch ended: `switched`, `reversed` or `failed` (with the error's code).
 * - `health`: a health check a run or a switch made: the LC, `phase` (`before` the switch on the
 *   standby, `after` it at the service address, `standby` after its patch and reboot, `watch` after a
 *   run's switch), the check, `ok`, `detail` and `attempts`; with the run's id or `switchId`.
 * - `monitor.poll`: a feed poll started or ended (with its outcome and the patches it registered).
 * - `monitor.mail`: the monitor mailed an administrator about new patches.
 * - `copy.progress`: progress of a disk copy started through the API (`jobId`, from/disk/to, `progress`:
 *   phase, pass, bytes), at most 4 a second per copy but the last of every phase.
 * - `image.build`: progress of an image build started through the API (phase, line), then built or failed.
 * - `traffic`: the service's requests and the LCs' TCP resets per second during a run or a switch.
 * - `approval`: an approval was accepted or refused.
 * - `audit`: a change made through the API (who, what).
 */
export type EventType =
  | 'run.step'
  | 'run.note'
  | 'run.state'
  | 'switch.phase'
  | 'switch.state'
  | 'verify.tree'
  | 'health'
  | 'monitor.poll'
  | 'monitor.mail'
  | 'traffic'
  | 'image.build'
  | 'copy.progress'
  | 'approval'
  | 'audit';

export interface NewEvent {
  type: EventType;
  runId?: string | null;
  lc?: string | null;
  data: Record<string, unknown>;
}

export interface StoredEvent extends NewEvent {
  id: number;
  at: string;
  runId: string | null;
  lc: string | null;
}

interface EventRow {
  id: number;
  at: string;
  type: EventType;
  run_id: string | null;
  lc: string | null;
  data: string;
}

const fromRow = (r: EventRow): StoredEvent => ({
  id: r.id,
  at: r.at,
  type: r.type,
  runId: r.run_id,
  lc: r.lc,
  data: JSON.parse(r.data) as Record<string, unknown>,
});

export class EventLog {
  private readonly emitter = new EventEmitter();

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.emitter.setMaxListeners(0);
  }

  append(event: NewEvent): StoredEvent {
    const at = this.now().toISOString();
    const result = this.db
      .prepare('INSERT INTO events (at, type, run_id, lc, data) VALUES (?, ?, ?, ?, ?)')
      .run(at, event.type, event.runId ?? null, event.lc ?? null, JSON.stringify(event.data));
    const stored: StoredEvent = {
      ...event,
      id: Number(result.lastInsertRowid),
      at,
      runId: event.runId ?? null,
      lc: event.lc ?? null,
    };
    this.emitter.emit('event', stored);
    return stored;
  }

  /**
   * Events with an id above `afterId`, oldest first, at most `limit`; only one run's when `runId` is
   * given, only those carrying `switchId` (a switch on its own: its phases, end and traffic) when that is.
   */
  after(afterId: number, options: { limit?: number; runId?: string; switchId?: string } = {}): StoredEvent[] {
    const limit = options.limit ?? 1000;
    if (options.switchId)
      return (
        this.db
          .prepare(
            "SELECT * FROM events WHERE id > ? AND json_extract(data, '$.switchId') = ? ORDER BY id LIMIT ?",
          )
          .all(afterId, options.switchId, limit) as EventRow[]
      ).map(fromRow);
    const rows = options.runId
      ? this.db
          .prepare('SELECT * FROM events WHERE id > ? AND run_id = ? ORDER BY id LIMIT ?')
          .all(afterId, options.runId, limit)
      : this.db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit);
    return (rows as EventRow[]).map(fromRow);
  }

  /** The newest `limit` events (of these types, when given), newest last. */
  latest(limit: number, options: { type?: EventType; types?: readonly EventType[] } = {}): StoredEvent[] {
    const types = options.types ?? (options.type ? [options.type] : []);
    const rows =
      types.length > 0
        ? this.db
            .prepare(
              `SELECT * FROM events WHERE type IN (${types.map(() => '?').join(', ')}) ORDER BY id DESC LIMIT ?`,
            )
            .all(...types, limit)
        : this.db.prepare('SELECT * FROM events ORDER BY id DESC LIMIT ?').all(limit);
    return (rows as EventRow[]).map(fromRow).reverse();
  }

  lastId(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM events').get() as { id: number }).id;
  }

  /** Calls `listener` for each event appended in this process; returns the unsubscribe function. */
  subscribe(listener: (event: StoredEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
