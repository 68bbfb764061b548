import type { ModuleSchema } from '../store/index.ts';

/** The durable event log: what happened, in order; the API's event stream resumes from its ids. */
export const eventsSchema: ModuleSchema = {
  module: 'events',
  migrations: [
    {
      version: 1,
      description: 'event log',
      up: `
        CREATE TABLE events (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          at TEXT NOT NULL,
          type TEXT NOT NULL,      -- EventType
          run_id TEXT,
          lc TEXT,
          data TEXT NOT NULL       -- JSON
        );
        CREATE INDEX events_run ON events (run_id, id);`,
    },
  ],
};
