/**
 * `understudy image build|list`: builds an image into a subvolume of the main pool, then keeps it as a
 * read-only snapshot that LCs' system disks are instant copy-on-write snapshots of. A failed build
 * leaves nothing behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, exec, isUnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import {
  debootstrapCached,
  hostDebianMirror,
  resolveDebianSystemInputs,
  type ResolvedDebianSystemInputs,
} from './debian-system.ts';
import { recipeNames, recipes, type RecipeName } from './recipes.ts';
import type { ImageProgress } from './progress.ts';
import { shiftIdsDown, type IdShift } from './shift-ids.ts';
import { bootsWithSystemd, installSystemdReporting } from './system-image.ts';

export interface ImageRecord {
  name: string;
  recipe: string;
  pool: string;
  path: string;
  sizeBytes: number;
  buildMs: number;
  builtAt: string;
  /** What the image was made from (suite, packages, archive snapshot; or the imported source). */
  inputs?: Record<string, unknown>;
}

interface ImageRow {
  name: string;
  recipe: string;
  pool: string;
  path: string;
  size_bytes: number;
  build_ms: number;
  built_at: string;
  inputs: string | null;
}

const toRecord = (r: ImageRow): ImageRecord => ({
  name: r.name,
  recipe: r.recipe,
  pool: r.pool,
  path: r.path,
  sizeBytes: r.size_bytes,
  buildMs: r.build_ms,
  builtAt: r.built_at,
  inputs: r.inputs ? (JSON.parse(r.inputs) as Record<string, unknown>) : undefined,
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
  /**
   * `debian` only: with a suite or packages, a real Debian system (systemd as init, the packages
   * installed by debootstrap from the host's archive) instead of the minimal busybox-init image.
   */
  suite?: string;
  packages?: readonly string[];
  progress?: ImageProgress;
  signal?: AbortSignal;
}

export async function buildImage(options: BuildImageOptions): Promise<ImageRecord> {
  if (!recipeNames.includes(options.recipe as RecipeName)) {
    throw new UnderstudyError('IMAGE_UNKNOWN', `There is no image recipe "${options.recipe}"`, {
      hint: `Use one of: ${recipeNames.join(', ')}`,
    });
  }
  const progress = options.progress ?? (() => undefined);
  if (options.suite !== undefined || options.packages !== undefined) {
    if (options.recipe !== 'debian')
      throw new UnderstudyError('INVALID_ARGUMENT', '--suite and --packages apply to the debian recipe only');
    const inputs = await resolveDebianSystemInputs({
      suite: options.suite ?? 'bookworm',
      packages: options.packages ?? [],
      mirror: process.env.UNDERSTUDY_DEBIAN_MIRROR ?? hostDebianMirror(),
    });
    const name =
      options.name ?? `debian-${inputs.suite}${inputs.packages.length ? `-${inputs.key.slice(0, 8)}` : ''}`;
    const existing = findImage(options.db, name);
    if (existing && !options.rebuild && existing.inputs?.key === inputs.key) return existing;
    return sealImage({
      ...options,
      name,
      recipe: 'debian-system',
      inputs: { ...inputs },
      fill: (root) => fillDebianSystem(root, inputs, options),
    });
  }
  const name = options.name ?? options.recipe;
  const existing = findImage(options.db, name);
  if (existing && !options.rebuild) return existing;
  return sealImage({
    ...options,
    name,
    recipe: options.recipe,
    fill: (root) =>
      recipes[options.recipe as RecipeName]({
        root,
        cacheDir: options.cacheDir,
        progress,
        signal: options.signal,
      }),
  });
}

async function fillDebianSystem(
  root: string,
  inputs: ResolvedDebianSystemInputs,
  options: BuildImageOptions,
): Promise<void> {
  const progress = options.progress ?? (() => undefined);
  const { tarball, cached } = await debootstrapCached({
    inputs,
    cacheDir: options.cacheDir,
    progress,
    signal: options.signal,
  });
  progress(
    `${cached ? 'using the cached' : 'unpacking the new'} ${inputs.suite} tree (${inputs.key})`,
    cached ? 'debootstrap-cached' : 'unpack',
  );
  await exec(['tar', '-C', root, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-xf', tarball], {
    timeoutMs: 10 * 60_000,
  });
  installSystemdReporting(root);
}

export interface ImportImageOptions {
  db: Db;
  /** A root filesystem: a directory, or a tar archive (compressed or not). */
  source: string;
  name: string;
  pool: { name: string; mountpoint: string };
  rebuild?: boolean;
  progress?: ImageProgress;
  /** The tree comes from an unprivileged container whose uid/gid 0 is this base on disk: shift it back. */
  shiftIds?: IdShift;
  /** Recorded with the image (e.g. the container it was imported from). */
  origin?: Record<string, unknown>;
}

/** Makes an image of an existing root filesystem (a directory or a tarball). */
export async function importImage(options: ImportImageOptions): Promise<ImageRecord> {
  const source = path.resolve(options.source);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch (error) {
    throw new UnderstudyError('IMAGE_SOURCE_INVALID', `There is no file or directory ${source} to import`, {
      cause: error,
    });
  }
  const existing = findImage(options.db, options.name);
  if (existing && !options.rebuild)
    throw new UnderstudyError('IMAGE_EXISTS', `There is already an image "${options.name}"`, {
      hint: 'Choose another --name, or pass --rebuild to replace it.',
    });
  const progress = options.progress ?? (() => undefined);
  return sealImage({
    ...options,
    recipe: 'import',
    inputs: { source, kind: stat.isDirectory() ? 'directory' : 'tar', ...options.origin },
    fill: async (root) => {
      progress(`copying ${source}`, 'copy');
      if (stat.isDirectory()) {
        await exec(['cp', '-a', '--reflink=auto', `${source}/.`, root], { timeoutMs: 30 * 60_000 });
      } else {
        await exec(['tar', '-C', root, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-xf', source], {
          timeoutMs: 30 * 60_000,
        });
      }
      if (options.shiftIds) {
        progress(`shifting owners down by ${options.shiftIds.uidBase} (the container's idmap)`, 'shift-ids');
        shiftIdsDown(root, options.shiftIds);
      }
      for (const required of ['etc', 'usr'])
        if (!fs.existsSync(path.join(root, required)))
          throw new UnderstudyError(
            'IMAGE_SOURCE_INVALID',
            `${source} is not a root filesystem: it has no /${required}`,
          );
      if (bootsWithSystemd(root)) installSystemdReporting(root);
    },
  });
}

/**
 * Builds an image in a fresh subvolume with `fill`, then keeps it as a read-only snapshot and records
 * it. A failure leaves nothing behind (the work subvolume is always deleted).
 */
async function sealImage(options: {
  db: Db;
  name: string;
  recipe: string;
  pool: { name: string; mountpoint: string };
  inputs?: Record<string, unknown>;
  progress?: ImageProgress;
  fill: (root: string) => Promise<void>;
}): Promise<ImageRecord> {
  const { db, pool, name } = options;
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name))
    throw new UnderstudyError('INVALID_ARGUMENT', `"${name}" is not a valid image name`, {
      hint: 'Use 1–64 of a-z, 0-9, ., _ and -, starting with a letter or digit.',
    });
  const progress = options.progress ?? (() => undefined);
  const imagesDir = path.join(pool.mountpoint, 'images');
  fs.mkdirSync(imagesDir, { recursive: true });
  const work = path.join(imagesDir, `.${name}.building-${crypto.randomBytes(3).toString('hex')}`);
  const final = path.join(imagesDir, name);
  const started = performance.now();
  await exec(['btrfs', 'subvolume', 'create', work]);
  try {
    await options.fill(work);
    progress('sealing the image (read-only snapshot)', 'seal');
    if (fs.existsSync(final)) await exec(['btrfs', 'subvolume', 'delete', final]);
    await exec(['btrfs', 'subvolume', 'snapshot', '-r', work, final]);
  } catch (error) {
    if (isUnderstudyError(error) && error.code !== 'EXEC_FAILED') throw error;
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
    inputs: options.inputs,
  };
  db.prepare(
    'INSERT OR REPLACE INTO images (name, recipe, pool, path, size_bytes, build_ms, built_at, inputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(
    record.name,
    record.recipe,
    record.pool,
    record.path,
    record.sizeBytes,
    record.buildMs,
    record.builtAt,
    record.inputs ? JSON.stringify(record.inputs) : null,
  );
  return record;
}

/** Deletes an image's subvolume and record. LCs made from it keep working (their disks are snapshots). */
export async function removeImage(db: Db, name: string): Promise<void> {
  const image = getImage(db, name);
  if (fs.existsSync(image.path)) await exec(['btrfs', 'subvolume', 'delete', image.path]);
  db.prepare('DELETE FROM images WHERE name = ?').run(name);
}
