/**
 * `understudy image build|list`: builds an image into a subvolume of the main pool, then keeps it as a
 * read-only snapshot that LCs' system disks are instant copy-on-write snapshots of. A failed build
 * leaves nothing behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, exec } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { recipeNames, recipes, type RecipeName } from './recipes.ts';

export interface ImageRecord {
  name: string;
  recipe: string;
  pool: string;
  path: string;
  sizeBytes: number;
  buildMs: number;
  builtAt: string;
}

interface ImageRow {
  name: string;
  recipe: string;
  pool: string;
  path: string;
  size_bytes: number;
  build_ms: number;
  built_at: string;
}

const toRecord = (r: ImageRow): ImageRecord => ({
  name: r.name,
  recipe: r.recipe,
  pool: r.pool,
  path: r.path,
  sizeBytes: r.size_bytes,
  buildMs: r.build_ms,
  builtAt: r.built_at,
});

export function listImages(db: Db): ImageRecord[] {
  return (db.prepare('SELECT * FROM images ORDER BY name').all() as ImageRow[]).map(toRecord);
}

export function findImage(db: Db, name: string): ImageRecord | undefined {
  const row = db.prepare('SELECT * FROM images WHERE name = ?').get(name) as ImageRow | undefined;
  return row && toRecord(row);
}

export function getImage(db: Db, name: string): ImageRecord {
  const image = findImage(db, name);
  if (!image)
    throw new UnderstudyError('IMAGE_NOT_FOUND', `There is no image "${name}"`, {
      hint: `Build it: understudy image build ${name}`,
    });
  return image;
}

function directorySize(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.lstatSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

export interface BuildImageOptions {
  db: Db;
  recipe: string;
  /** Image name (default: the recipe's name). */
  name?: string;
  pool: { name: string; mountpoint: string };
  cacheDir: string;
  /** Rebuild even if an image of that name exists. */
  rebuild?: boolean;
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

export async function buildImage(options: BuildImageOptions): Promise<ImageRecord> {
  const { db, pool } = options;
  if (!recipeNames.includes(options.recipe as RecipeName)) {
    throw new UnderstudyError('IMAGE_UNKNOWN', `There is no image recipe "${options.recipe}"`, {
      hint: `Use one of: ${recipeNames.join(', ')}`,
    });
  }
  const name = options.name ?? options.recipe;
  const existing = findImage(db, name);
  if (existing && !options.rebuild) return existing;
  const progress = options.progress ?? (() => undefined);
  const imagesDir = path.join(pool.mountpoint, 'images');
  fs.mkdirSync(imagesDir, { recursive: true });
  const work = path.join(imagesDir, `.${name}.building-${crypto.randomBytes(3).toString('hex')}`);
  const final = path.join(imagesDir, name);
  const started = performance.now();
  await exec(['btrfs', 'subvolume', 'create', work]);
  try {
    await recipes[options.recipe as RecipeName]({
      root: work,
      cacheDir: options.cacheDir,
      progress,
      signal: options.signal,
    });
    progress('sealing the image (read-only snapshot)');
    if (existing) await exec(['btrfs', 'subvolume', 'delete', final]);
    await exec(['btrfs', 'subvolume', 'snapshot', '-r', work, final]);
  } catch (error) {
    throw new UnderstudyError(
      'IMAGE_BUILD_FAILED',
      `Building the image "${name}" failed: ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await exec(['btrfs', 'subvolume', 'delete', work]).catch(() => undefined);
  }
  const record: ImageRecord = {
    name,
    recipe: options.recipe,
    pool: pool.name,
    path: final,
    sizeBytes: directorySize(final),
    buildMs: Math.round(performance.now() - started),
    builtAt: new Date().toISOString(),
  };
  db.prepare(
    'INSERT OR REPLACE INTO images (name, recipe, pool, path, size_bytes, build_ms, built_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  ).run(
    record.name,
    record.recipe,
    record.pool,
    record.path,
    record.sizeBytes,
    record.buildMs,
    record.builtAt,
  );
  return record;
}

/** Deletes an image's subvolume and record. LCs made from it keep working (their disks are snapshots). */
export async function removeImage(db: Db, name: string): Promise<void> {
  const image = getImage(db, name);
  if (fs.existsSync(image.path)) await exec(['btrfs', 'subvolume', 'delete', image.path]);
  db.prepare('DELETE FROM images WHERE name = ?').run(name);
}
