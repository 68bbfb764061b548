import type { ModuleSchema } from '../store/index.ts';

/** The API's operators (bearer tokens, stored as hashes) and the audit log of every change made through it. */
export const apiSchema: ModuleSchema = {
  module: 'api',
  migrations: [
    {
      version: 1,
      description: 'API tokens and audit log',
      up: `
        CREATE TABLE api_tokens (
          id TEXT PRIMARY KEY,
          operator TEXT NOT NULL,
          scope TEXT NOT NULL,          -- TokenScope
          hash TEXT NOT NULL UNIQUE,    -- sha256 of the token, hex
          created_at TEXT NOT NULL,
          last_used_at TEXT,
          revoked_at TEXT
        );
        CREATE TABLE audit_log (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          at TEXT NOT NULL,
          operator TEXT NOT NULL,
          token_id TEXT,
          action TEXT NOT NULL,         -- e.g. "POST /v1/lcs/:name/start"
          target TEXT,                  -- the thing changed, e.g. the LC or run id
          status INTEGER NOT NULL,      -- HTTP status of the answer
          details TEXT NOT NULL         -- JSON: parameters (secrets removed), error code
        );`,
    },
  ],
};
