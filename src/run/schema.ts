import type { ModuleSchema } from '../store/index.ts';

/** Patch runs (Fig. 7) and their steps, written before and after every step so a run survives a crash. */
export const runSchema: ModuleSchema = {
  module: 'run',
  migrations: [
    {
      version: 1,
      description: 'patch runs and their steps',
      up: `
        CREATE TABLE runs (
          id TEXT PRIMARY KEY,
          lc TEXT NOT NULL,
          standby TEXT,
          options TEXT NOT NULL,         -- ResolvedRunOptions as JSON
          state TEXT NOT NULL,           -- RunState
          facts TEXT NOT NULL DEFAULT '{}',
          error TEXT,
          owner_pid INTEGER,             -- the manager process driving the run now
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL,
          finished_at TEXT
        );
        CREATE TABLE run_steps (
          run_id TEXT NOT NULL REFERENCES runs(id),
          seq INTEGER NOT NULL,
          name TEXT NOT NULL,
          state TEXT NOT NULL,           -- StepState
          attempts INTEGER NOT NULL DEFAULT 0,
          started_at TEXT,
          ended_at TEXT,
          duration_ms INTEGER,
          output TEXT,                   -- JSON the step returned
          error TEXT,
          PRIMARY KEY (run_id, seq)
        );`,
    },
    {
      version: 2,
      description: 'the owner (process and instance) driving a run',
      up: 'ALTER TABLE runs ADD COLUMN owner TEXT',
    },
  ],
};
