import type { ModuleSchema } from '../store/index.ts';

export const imagesSchema: ModuleSchema = {
  module: 'images',
  migrations: [
    {
      version: 1,
      description: 'built root-filesystem images',
      up: `CREATE TABLE images (
        name TEXT PRIMARY KEY,
        recipe TEXT NOT NULL,
        pool TEXT NOT NULL,
        path TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        build_ms INTEGER NOT NULL,
        built_at TEXT NOT NULL
      )`,
    },
    {
      version: 2,
      description: 'what an image was made from (suite, packages, archive snapshot, imported source)',
      up: 'ALTER TABLE images ADD COLUMN inputs TEXT',
    },
  ],
};
