import type { ModuleSchema } from '../store/index.ts';

/** The resource table of Fig. 5: one row per LC, with its disks and NICs. */
export const inventorySchema: ModuleSchema = {
  module: 'inventory',
  migrations: [
    {
      version: 1,
      description: 'logical computers, their disks and NICs',
      up: `
        CREATE TABLE lcs (
          name TEXT PRIMARY KEY,
          driver TEXT NOT NULL,
          image TEXT NOT NULL,
          cpus TEXT NOT NULL,             -- CPU set, e.g. "0" or "0-1"
          cpu_share INTEGER NOT NULL,     -- percent of one CPU
          memory_mb INTEGER NOT NULL,
          role TEXT NOT NULL,             -- see LcRole
          created_at TEXT NOT NULL
        );
        CREATE TABLE lc_disks (
          lc TEXT NOT NULL REFERENCES lcs(name) ON DELETE CASCADE,
          name TEXT NOT NULL,
          pool TEXT NOT NULL,
          size_mb INTEGER NOT NULL,
          mount_path TEXT NOT NULL,
          position INTEGER NOT NULL,
          PRIMARY KEY (lc, name)
        );
        CREATE TABLE lc_nics (
          lc TEXT NOT NULL REFERENCES lcs(name) ON DELETE CASCADE,
          name TEXT NOT NULL,
          bridge TEXT NOT NULL,
          mac TEXT NOT NULL UNIQUE,
          addresses TEXT NOT NULL,        -- JSON array of CIDR strings
          position INTEGER NOT NULL,
          PRIMARY KEY (lc, name)
        );`,
    },
    {
      version: 2,
      description: 'the services an LC declares (see service.ts)',
      up: `
        CREATE TABLE lc_services (
          lc TEXT NOT NULL REFERENCES lcs(name) ON DELETE CASCADE,
          name TEXT NOT NULL,
          definition TEXT NOT NULL,       -- JSON of a ServiceDefinition
          position INTEGER NOT NULL,
          PRIMARY KEY (lc, name)
        );`,
    },
  ],
};
