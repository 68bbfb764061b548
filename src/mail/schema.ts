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
  ],
};
