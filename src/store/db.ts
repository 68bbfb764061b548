/**
 * The store: one SQLite file (better-sqlite3, WAL). Each module owns its tables and declares its
 * migrations under its own name, so modules evolve their schema independently; `openStore` applies
 * every pending migration in order, each in a transaction.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { UnderstudyError } from '../core/index.ts';
import { leasesSchema } from './leases.ts';
import type { Db, ModuleSchema } from './types.ts';

export type { Db, Migration, ModuleSchema } from './types.ts';

function applyMigrations(db: Db, schema: ModuleSchema): void {
  const current =
    (
      db.prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE module = ?').get(schema.module) as {
        v: number | null;
      }
    ).v ?? 0;
  for (const migration of [...schema.migrations].sort((a, b) => a.version - b.version)) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      if (typeof migration.up === 'string') db.exec(migration.up);
      else migration.up(db);
      db.prepare(
        'INSERT INTO schema_migrations (module, version, description, applied_at) VALUES (?, ?, ?, ?)',
      ).run(schema.module, migration.version, migration.description, new Date().toISOString());
    })();
  }
}

/**
 * Whether `error` (or an error it was caused by) is SQLite's "database or disk is full": the filesystem
 * of the store has no room for the write. SQLite rolled the transaction back; the file is intact.
 */
export function isStoreFull(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause)
    if ((e as { code?: unknown }).code === 'SQLITE_FULL') return true;
  return false;
}

/** STATE_DIR_FULL naming the store's directory, with `what` could not be recorded and what to do. */
export function storeFullError(db: Db, error: unknown, what: string, hint: string): UnderstudyError {
  const dir = path.dirname(db.name);
  return new UnderstudyError(
    'STATE_DIR_FULL',
    `The filesystem of the state directory ${dir} is full: ${what} (SQLite: database or disk is full)`,
    { cause: error, hint: `Free space on the filesystem holding ${dir} (\`df -h ${dir}\`). ${hint}` },
  );
}

/** Brings more module schemas up to date on a store that is already open. */
export function ensureSchemas(db: Db, schemas: readonly ModuleSchema[]): void {
  for (const schema of schemas) applyMigrations(db, schema);
}

/**
 * Runs `write` with the connection's commits not waiting for the disk (SQLite's WAL with
 * `synchronous = NORMAL`), then restores the setting. What it commits survives the death of the
 * process, not a crash of the host, until the next commit that waits for the disk: the log is written
 * in order, so that commit carries everything before it to the disk.
 */
export function withoutWaitingForDisk<T>(db: Db, write: () => T): T {
  const previous = db.pragma('synchronous', { simple: true }) as number;
  db.pragma('synchronous = NORMAL');
  try {
    return write();
  } finally {
    db.pragma(`synchronous = ${previous}`);
  }
}

/**
 * Opens (creating if needed) the store at `file` and brings the given module schemas up to date.
 * Pass ':memory:' for unit tests.
 */
export function openStore(file: string, schemas: readonly ModuleSchema[]): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 10000');
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    module TEXT NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL, applied_at TEXT NOT NULL,
    PRIMARY KEY (module, version))`);
  try {
    // The store's own table: leases on resources, used by every module (see leases.ts).
    for (const schema of [leasesSchema, ...schemas]) applyMigrations(db, schema);
  } catch (error) {
    db.close();
    if (error instanceof Error && /database is locked/.test(error.message)) {
      throw new UnderstudyError('STORE_LOCKED', `The store ${file} is locked by another process`, {
        cause: error,
      });
    }
    throw error;
  }
  return db;
}
