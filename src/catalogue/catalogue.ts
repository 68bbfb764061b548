/**
 * The patch catalogue: registers verified patch files and keeps, per logical computer, whether a
 * patch is to be applied at the next run and what happened when it was.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnderstudyError, isErrno } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { sha256File } from './hash.ts';
import {
  patchCategories,
  patchFormats,
  type Patch,
  type PatchCategory,
  type PatchFormat,
  type PatchLcState,
  type PatchResult,
} from './types.ts';

export interface RegisterPatchOptions {
  /** The file to register; it is copied into the catalogue's store, the original is left alone. */
  file: string;
  name: string;
  categories: readonly PatchCategory[];
  format: PatchFormat;
  /** The sha256 the source declared. Registration fails with PATCH_HASH_MISMATCH if the file differs. */
  sha256: string;
  source?: { feed?: string; url?: string };
  description?: string;
  package?: string;
  version?: string;
  publishedAt?: string;
  /** When the monitor first saw the patch (defaults to now). */
  firstSeenAt?: string;
}

export interface CatalogueOptions {
  db: Db;
  /** Where patch files are kept, normally `<stateDir>/patches`. */
  patchesDir: string;
  now?: () => Date;
}

export interface Catalogue {
  /**
   * Verifies the file's sha256 against the declared one, stores it as `<patchesDir>/<sha256>` and
   * adds the row. Registering the same name with the same sha256 again returns the existing patch;
   * a different sha256 under a registered name throws PATCH_EXISTS.
   */
  registerPatch(options: RegisterPatchOptions): Promise<{ patch: Patch; created: boolean }>;
  listPatches(filter?: { category?: PatchCategory; sourceFeed?: string }): Patch[];
  /** Throws PATCH_NOT_FOUND. */
  getPatch(name: string): Patch;
  hasPatch(name: string): boolean;
  /** States of one patch on each LC, or of every patch on one LC. */
  lcStates(filter: { patch?: string; lc?: string }): PatchLcState[];
  markNextRun(patch: string, lc: string, on: boolean): PatchLcState;
  /** Records the outcome of applying a patch to an LC; `ok` sets the applied date and clears the next-run flag. */
  recordResult(patch: string, lc: string, result: PatchResult): PatchLcState;
  /** Patches flagged for the next run on this LC and not yet applied, oldest registration first. */
  patchesForNextRun(lc: string): Patch[];
  /** The LC runs without the patch again (a rollback): not applied, result `skipped` with the reason. */
  recordRolledBack(patch: string, lc: string, reason: string): PatchLcState;
}

interface PatchRow {
  name: string;
  categories: string;
  format: PatchFormat;
  sha256: string;
  size: number;
  source_feed: string | null;
  source_url: string | null;
  description: string;
  package: string | null;
  version: string | null;
  published_at: string | null;
  first_seen_at: string;
  registered_at: string;
  file_path: string;
}

interface StateRow {
  patch: string;
  lc: string;
  applied_at: string | null;
  apply_next_run: number;
  last_result: PatchLcState['lastResult'];
  last_exit_code: number | null;
  last_output_tail: string | null;
  updated_at: string;
}

const outputTailBytes = 4096;

function toPatch(row: PatchRow): Patch {
  return {
    name: row.name,
    categories: JSON.parse(row.categories) as PatchCategory[],
    format: row.format,
    sha256: row.sha256,
    size: row.size,
    sourceFeed: row.source_feed,
    sourceUrl: row.source_url,
    description: row.description,
    package: row.package,
    version: row.version,
    publishedAt: row.published_at,
    firstSeenAt: row.first_seen_at,
    registeredAt: row.registered_at,
    filePath: row.file_path,
  };
}

function toState(row: StateRow): PatchLcState {
  return {
    patch: row.patch,
    lc: row.lc,
    appliedAt: row.applied_at,
    applyNextRun: row.apply_next_run === 1,
    lastResult: row.last_result,
    lastExitCode: row.last_exit_code,
    lastOutputTail: row.last_output_tail,
    updatedAt: row.updated_at,
  };
}

/** Patch names: what a file name, a mail line and a URL can all carry unchanged. */
const patchNamePattern = /^[A-Za-z0-9][A-Za-z0-9._+~:-]{0,199}$/;

export function validatePatchName(name: string): void {
  if (!patchNamePattern.test(name)) {
    throw new UnderstudyError('INVALID_ARGUMENT', `Patch name "${name}" is invalid`, {
      hint: 'Use 1–200 characters of letters, digits and . _ + ~ : -, starting with a letter or digit.',
    });
  }
}

function normaliseCategories(categories: readonly string[]): PatchCategory[] {
  const set = new Set<PatchCategory>();
  for (const c of categories) {
    if (!(patchCategories as readonly string[]).includes(c)) {
      throw new UnderstudyError('INVALID_ARGUMENT', `Unknown patch category "${c}"`, {
        hint: `Use one or more of: ${patchCategories.join(', ')}.`,
      });
    }
    set.add(c as PatchCategory);
  }
  if (set.size === 0)
    throw new UnderstudyError('INVALID_ARGUMENT', 'A patch needs at least one category', {
      hint: `Use one or more of: ${patchCategories.join(', ')}.`,
    });
  return [...set].sort();
}

export function parsePatchFormat(format: string): PatchFormat {
  if (!(patchFormats as readonly string[]).includes(format)) {
    throw new UnderstudyError('INVALID_ARGUMENT', `Unknown patch format "${format}"`, {
      hint: `Use one of: ${patchFormats.join(', ')}.`,
    });
  }
  return format as PatchFormat;
}

export function createCatalogue(options: CatalogueOptions): Catalogue {
  const { db, patchesDir } = options;
  const now = (): string => (options.now ?? (() => new Date()))().toISOString();

  const selectPatch = db.prepare('SELECT * FROM patches WHERE name = ?');
  const selectState = db.prepare('SELECT * FROM patch_lc_state WHERE patch = ? AND lc = ?');

  function getPatch(name: string): Patch {
    const row = selectPatch.get(name) as PatchRow | undefined;
    if (!row) throw new UnderstudyError('PATCH_NOT_FOUND', `No patch named "${name}"`);
    return toPatch(row);
  }

  function upsertState(
    patch: string,
    lc: string,
    set: Partial<Omit<StateRow, 'patch' | 'lc'>>,
  ): PatchLcState {
    getPatch(patch);
    const at = now();
    db.prepare(
      'INSERT INTO patch_lc_state (patch, lc, updated_at) VALUES (?, ?, ?) ON CONFLICT (patch, lc) DO NOTHING',
    ).run(patch, lc, at);
    const columns = Object.keys(set);
    const assignments = [...columns.map((c) => `${c} = @${c}`), 'updated_at = @updated_at'].join(', ');
    db.prepare(`UPDATE patch_lc_state SET ${assignments} WHERE patch = @patch AND lc = @lc`).run({
      ...set,
      updated_at: at,
      patch,
      lc,
    });
    return toState(selectState.get(patch, lc) as StateRow);
  }

  return {
    async registerPatch(opts) {
      validatePatchName(opts.name);
      const categories = normaliseCategories(opts.categories);
      const format = parsePatchFormat(opts.format);
      const declared = opts.sha256.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(declared))
        throw new UnderstudyError(
          'INVALID_ARGUMENT',
          `The sha256 declared for patch "${opts.name}" is not 64 hex digits`,
        );
      const actual = await sha256File(opts.file);
      if (actual.sha256 !== declared) {
        throw new UnderstudyError(
          'PATCH_HASH_MISMATCH',
          `Patch "${opts.name}" (${opts.file}) has sha256 ${actual.sha256}, but ${declared} was declared`,
          {
            details: { name: opts.name, declared, actual: actual.sha256 },
          },
        );
      }
      const existing = selectPatch.get(opts.name) as PatchRow | undefined;
      if (existing) {
        if (existing.sha256 === declared) return { patch: toPatch(existing), created: false };
        throw new UnderstudyError(
          'PATCH_EXISTS',
          `Patch "${opts.name}" is already registered with sha256 ${existing.sha256}`,
          { details: { name: opts.name } },
        );
      }
      const stored = path.join(patchesDir, declared);
      await fs.mkdir(patchesDir, { recursive: true, mode: 0o700 });
      try {
        await fs.access(stored);
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
        // Copy then rename, so a crash never leaves a half-written file under the final name.
        const partial = `${stored}.partial-${process.pid}`;
        await fs.copyFile(opts.file, partial);
        await fs.rename(partial, stored);
      }
      const at = now();
      const insert = db.prepare(
        `INSERT INTO patches (name, categories, format, sha256, size, source_feed, source_url, description, package, version,
           published_at, first_seen_at, registered_at, file_path)
         VALUES (@name, @categories, @format, @sha256, @size, @source_feed, @source_url, @description, @package, @version,
           @published_at, @first_seen_at, @registered_at, @file_path)`,
      );
      const row = {
        name: opts.name,
        categories: JSON.stringify(categories),
        format,
        sha256: declared,
        size: actual.size,
        source_feed: opts.source?.feed ?? null,
        source_url: opts.source?.url ?? null,
        description: opts.description ?? '',
        package: opts.package ?? null,
        version: opts.version ?? null,
        published_at: opts.publishedAt ?? null,
        first_seen_at: opts.firstSeenAt ?? at,
        registered_at: at,
        file_path: stored,
      };
      try {
        insert.run(row);
      } catch (error) {
        // Another process (a CLI `monitor run` next to the daemon) registered it meanwhile.
        if ((error as { code?: string }).code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw error;
        const raced = selectPatch.get(opts.name) as PatchRow;
        if (raced.sha256 === declared) return { patch: toPatch(raced), created: false };
        throw new UnderstudyError(
          'PATCH_EXISTS',
          `Patch "${opts.name}" is already registered with sha256 ${raced.sha256}`,
          { details: { name: opts.name } },
        );
      }
      return { patch: getPatch(opts.name), created: true };
    },

    listPatches(filter = {}) {
      const rows = db.prepare('SELECT * FROM patches ORDER BY registered_at, name').all() as PatchRow[];
      return rows
        .map(toPatch)
        .filter((p) => (filter.category ? p.categories.includes(filter.category) : true))
        .filter((p) => (filter.sourceFeed ? p.sourceFeed === filter.sourceFeed : true));
    },

    getPatch,

    hasPatch(name) {
      return selectPatch.get(name) !== undefined;
    },

    lcStates(filter) {
      const rows = db
        .prepare(
          'SELECT * FROM patch_lc_state WHERE (@patch IS NULL OR patch = @patch) AND (@lc IS NULL OR lc = @lc) ORDER BY patch, lc',
        )
        .all({ patch: filter.patch ?? null, lc: filter.lc ?? null }) as StateRow[];
      return rows.map(toState);
    },

    markNextRun(patch, lc, on) {
      return upsertState(patch, lc, { apply_next_run: on ? 1 : 0 });
    },

    recordResult(patch, lc, result) {
      const output =
        result.output === undefined
          ? null
          : Buffer.from(result.output).subarray(-outputTailBytes).toString('utf8');
      const set: Partial<StateRow> = {
        last_result: result.state,
        last_exit_code: result.exitCode ?? null,
        last_output_tail: output,
      };
      if (result.state === 'ok') Object.assign(set, { applied_at: now(), apply_next_run: 0 });
      return upsertState(patch, lc, set);
    },

    recordRolledBack(patch, lc, reason) {
      return upsertState(patch, lc, {
        applied_at: null,
        last_result: 'skipped',
        last_exit_code: null,
        last_output_tail: reason,
      });
    },

    patchesForNextRun(lc) {
      const rows = db
        .prepare(
          `SELECT p.* FROM patches p JOIN patch_lc_state s ON s.patch = p.name
           WHERE s.lc = ? AND s.apply_next_run = 1 AND s.applied_at IS NULL ORDER BY p.registered_at, p.name`,
        )
        .all(lc) as PatchRow[];
      return rows.map(toPatch);
    },
  };
}
