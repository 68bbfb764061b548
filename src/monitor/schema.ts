import type { ModuleSchema } from '../store/index.ts';

export const monitorSchema: ModuleSchema = {
  module: 'monitor',
  migrations: [
    {
      version: 1,
      description: 'feeds, poll state, apt versions seen, pending notifications, decisions',
      up: `
        CREATE TABLE feeds (
          name TEXT PRIMARY KEY,
          kind TEXT NOT NULL CHECK (kind IN ('patch-server', 'apt')),
          url TEXT NOT NULL,
          interval_seconds INTEGER NOT NULL,
          options TEXT NOT NULL DEFAULT '{}',
          created_at TEXT NOT NULL
        );
        CREATE TABLE feed_state (
          feed TEXT PRIMARY KEY REFERENCES feeds(name) ON DELETE CASCADE,
          last_poll_at TEXT,
          last_success_at TEXT,
          last_outcome TEXT,
          last_error_code TEXT,
          last_error TEXT,
          consecutive_failures INTEGER NOT NULL DEFAULT 0,
          next_poll_at TEXT,
          etag TEXT,
          last_modified TEXT,
          watermark TEXT,
          index_digest TEXT,
          registered_total INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE feed_events (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          feed TEXT NOT NULL,
          at TEXT NOT NULL,
          outcome TEXT NOT NULL,
          code TEXT,
          message TEXT,
          registered INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE apt_versions_seen (
          feed TEXT NOT NULL,
          package TEXT NOT NULL,
          version TEXT NOT NULL,
          arch TEXT NOT NULL,
          first_seen_at TEXT NOT NULL,
          PRIMARY KEY (feed, package, version, arch)
        );
        CREATE TABLE pending_notifications (
          patch TEXT PRIMARY KEY,
          queued_at TEXT NOT NULL
        );
        CREATE TABLE patch_decisions (
          patch TEXT PRIMARY KEY,
          decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
          decided_by TEXT NOT NULL,
          via TEXT NOT NULL CHECK (via IN ('mail', 'link', 'api', 'auto')),
          decided_at TEXT NOT NULL
        );
      `,
    },
    {
      version: 2,
      description: 'which administrator was mailed about which patch',
      up: `
        CREATE TABLE notifications_sent (
          patch TEXT NOT NULL,
          admin TEXT NOT NULL,
          challenge TEXT NOT NULL,
          sent_at TEXT NOT NULL,
          PRIMARY KEY (patch, admin)
        );
      `,
    },
    {
      version: 3,
      description: 'time the last accepted index was generated (replay and freeze detection)',
      up: `ALTER TABLE feed_state ADD COLUMN index_generated TEXT;`,
    },
  ],
};
