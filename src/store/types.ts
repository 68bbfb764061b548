/** The store's types: the database handle and a module's schema migrations. */
import type Database from 'better-sqlite3';

export type Db = Database.Database;

export interface Migration {
  /** 1, 2, 3 … in order; never renumber a released migration. */
  version: number;
  description: string;
  up: string | ((db: Db) => void);
}

export interface ModuleSchema {
  /** The owning module, e.g. 'inventory'. */
  module: string;
  migrations: readonly Migration[];
}
