import type { ModuleSchema } from '../store/index.ts';

export const mailSchema: ModuleSchema = {
  module: 'mail',
  migrations: [
    {
      version: 1,
      description: 'approval challenges and processed replies',
      up: `
        CREATE TABLE approval_challenges (
          challenge TEXT PRIMARY KEY,
          admin TEXT NOT NULL,
          patches TEXT NOT NULL,              -- JSON array of patch names, sorted
          created_at TEXT NOT NULL,
          expires_at TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('open', 'used')),
          used_at TEXT,
          decision TEXT,
          via TEXT
        );
        CREATE TABLE processed_messages (
          message_key TEXT PRIMARY KEY,
          processed_at TEXT NOT NULL,
          outcome TEXT NOT NULL,
          reason TEXT
        );
      `,
    },
    {
      version: 2,
      description:
        'approval attempts: limit and lock per challenge, audit of every attempt, accepted approvals queue',
      up: `
        ALTER TABLE approval_challenges ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE approval_challenges ADD COLUMN locked_at TEXT;
        CREATE TABLE approval_attempts (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          at TEXT NOT NULL,
          challenge TEXT NOT NULL,
          sender TEXT NOT NULL,
          via TEXT NOT NULL,
          outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
          reason TEXT
        );
        -- Written in the transaction that consumes the challenge; applied_at is set once the
        -- decision is in the patch table and its patch run was handed to the run starter.
        CREATE TABLE accepted_approvals (
          challenge TEXT PRIMARY KEY,
          admin TEXT NOT NULL,
          decision TEXT NOT NULL,
          patches TEXT NOT NULL,
          via TEXT NOT NULL,
          accepted_at TEXT NOT NULL,
          applied_at TEXT
        );
      `,
    },
  ],
};
