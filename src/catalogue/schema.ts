/**
 * The patch table (SPEC §3, Fig. 6) in the store: one row per patch file, and one row per
 * (patch, LC) for what happened to that patch on that logical computer.
 */
import type { ModuleSchema } from '../store/index.ts';

export const catalogueSchema: ModuleSchema = {
  module: 'catalogue',
  migrations: [
    {
      version: 1,
      description: 'patches and per-LC patch state',
      up: `
        CREATE TABLE patches (
          name TEXT PRIMARY KEY,
          categories TEXT NOT NULL,           -- JSON array, sorted, subset of security/feature/bugfix
          format TEXT NOT NULL CHECK (format IN ('diff', 'archive', 'script', 'deb')),
          sha256 TEXT NOT NULL,
          size INTEGER NOT NULL,
          source_feed TEXT,                   -- feed name, NULL when added by hand
          source_url TEXT,
          description TEXT NOT NULL DEFAULT '',
          package TEXT,                       -- deb patches: the Debian package and version
          version TEXT,
          published_at TEXT,
          first_seen_at TEXT NOT NULL,
          registered_at TEXT NOT NULL,
          file_path TEXT NOT NULL
        );
        CREATE TABLE patch_lc_state (
          patch TEXT NOT NULL REFERENCES patches(name) ON DELETE CASCADE,
          lc TEXT NOT NULL,
          applied_at TEXT,
          apply_next_run INTEGER NOT NULL DEFAULT 0,
          last_result TEXT CHECK (last_result IN ('ok', 'failed', 'skipped')),
          last_exit_code INTEGER,
          last_output_tail TEXT,
          updated_at TEXT NOT NULL,
          PRIMARY KEY (patch, lc)
        );
        CREATE INDEX patch_lc_state_next_run ON patch_lc_state (lc, apply_next_run);
      `,
    },
  ],
};
