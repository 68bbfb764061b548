import type { ModuleSchema } from '../store/index.ts';

export const hostSchema: ModuleSchema = {
  module: 'host',
  migrations: [
    {
      version: 1,
      description: 'host network and storage pools',
      up: `
        CREATE TABLE host_network (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          tag TEXT NOT NULL,            -- short random id that makes this host's device names unique
          bridge TEXT NOT NULL,
          subnet TEXT NOT NULL,         -- CIDR, e.g. 198.18.0.0/24
          host_address TEXT NOT NULL,   -- CIDR of the host's own address on the bridge
          created_at TEXT NOT NULL
        );
        CREATE TABLE pools (
          name TEXT PRIMARY KEY,
          device TEXT,                  -- block device named by the operator, or NULL for a loop image
          image_path TEXT,              -- sparse loop image made by understudy, or NULL
          mountpoint TEXT NOT NULL,
          size_bytes INTEGER NOT NULL,
          created_at TEXT NOT NULL
        );`,
    },
    {
      version: 2,
      description: 'client hosts understudy made on the bridge',
      up: `
        CREATE TABLE host_clients (
          netns TEXT PRIMARY KEY,       -- the client's network namespace
          host_if TEXT NOT NULL,        -- host end of its veth pair (a bridge port)
          created_at TEXT NOT NULL
        );`,
    },
  ],
};
