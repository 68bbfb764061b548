/**
 * A hash of a directory tree that two copies share exactly when they hold the same files: per entry
 * its relative path, type, mode, owner, size, content (sha256), symlink target, device number,
 * hard-link group and extended attributes. Times are left out (the seed's notion of "identical" is
 * content and metadata a service relies on). Used by --verify and by the tests.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnderstudyError, exec, isErrno, isUnderstudyError } from '../core/index.ts';

export interface TreeHash {
  /** sha256 over every entry line, in path order. */
  digest: string;
  entries: number;
  /** File content bytes read. */
  bytes: number;
  /** Per entry: relative path → sha256 of its line (to name what differs). */
  lines: Map<string, string>;
  durationMs: number;
}

/**
 * Extended attributes by path relative to root: of every entry under root (`getfattr -R`, one
 * process), or of the given absolute paths only.
 */
async function readXattrs(root: string, only?: readonly string[]): Promise<Map<string, string>> {
  if (only !== undefined) {
    const merged = new Map<string, string>();
    // Bounded argv: a few hundred paths per getfattr.
    for (let i = 0; i < only.length; i += 500) {
      const part = await readXattrsOf(root, ['getfattr', ...getfattrFlags, ...only.slice(i, i + 500)]);
      for (const [k, v] of part) merged.set(k, v);
    }
    return merged;
  }
  return readXattrsOf(root, ['getfattr', '-R', ...getfattrFlags, root]);
}

const getfattrFlags = ['-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names'];

/** Whether any of the given absolute paths has an extended attribute (ACLs included), links not followed. */
export async function anyXattrs(paths: readonly string[]): Promise<boolean> {
  for (let i = 0; i < paths.length; i += 500) {
    const found = await readXattrsOf('/', ['getfattr', ...getfattrFlags, ...paths.slice(i, i + 500)]);
    if (found.size > 0) return true;
  }
  return false;
}

async function readXattrsOf(root: string, argv: string[]): Promise<Map<string, string>> {
  let stdout: string;
  try {
    ({ stdout } = await exec(argv, {
      timeoutMs: 600_000,
      maxBuffer: 1024 * 1024 * 1024,
      okCodes: [0, 1],
    }));
  } catch (error) {
    if (isUnderstudyError(error, 'EXEC_NOT_FOUND')) {
      throw new UnderstudyError(
        'EXEC_NOT_FOUND',
        'getfattr is not installed (needed to compare extended attributes)',
        {
          hint: 'Install it: apt-get install attr',
          cause: error,
        },
      );
    }
    throw error;
  }
  const byPath = new Map<string, string>();
  let current: string | undefined;
  let attrs: string[] = [];
  const flush = (): void => {
    if (current !== undefined && attrs.length) byPath.set(current, attrs.sort().join(','));
  };
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      flush();
      const absolute = line
        .slice('# file: '.length)
        .replace(/\\(\d{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
      current = path.relative(root, absolute) || '.';
      attrs = [];
    } else if (line.trim() !== '' && current !== undefined) {
      attrs.push(line.trim());
    }
  }
  flush();
  return byPath;
}

/**
 * Paces reads to at most `bytesPerSecond` over the whole hash (a background check must not take the
 * disk from the service): `take(n)` resolves once reading n more bytes keeps within the rate.
 */
export interface ReadPace {
  take(bytes: number): Promise<void>;
}

export function readPace(bytesPerSecond: number): ReadPace {
  const started = performance.now();
  let total = 0;
  return {
    async take(bytes) {
      total += bytes;
      const due = (total / bytesPerSecond) * 1000 - (performance.now() - started);
      if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    },
  };
}

/**
 * sha256 of a file's content, read through `buffer` (one per tree walk, reused for every file: a
 * fresh 1 MiB buffer per file made every small file cost a large allocation outside the JS heap,
 * and the full garbage collections they triggered cost more the larger the manager's heap).
 */
async function hashFile(file: string, buffer: Buffer, pace?: ReadPace): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      await pace?.take(bytesRead);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

function typeOf(stat: Stats): string {
  if (stat.isFile()) return 'f';
  if (stat.isDirectory()) return 'd';
  if (stat.isSymbolicLink()) return 'l';
  if (stat.isCharacterDevice()) return 'c';
  if (stat.isBlockDevice()) return 'b';
  if (stat.isFIFO()) return 'p';
  return 's';
}

/**
 * Hashes the tree under `root` (which must not change meanwhile: hash a snapshot or a frozen tree);
 * `pace` bounds the rate of its reads. `linksAmong`: the hard-link groups are taken among the paths
 * it accepts only (a comparison that leaves paths out must not see them through the links of the
 * paths it compares): the first accepted path of a group hashes as a file with no other link, each
 * later one names that first one. The lines of the paths it rejects are not meant to be compared.
 */
export async function hashTree(
  root: string,
  options: { pace?: ReadPace; linksAmong?: (relative: string) => boolean } = {},
): Promise<TreeHash> {
  return hashEntries(root, undefined, true, options.pace, options.linksAmong);
}

/**
 * Hashes only the entries at `paths` (relative to root, "." the root; directories are not descended
 * into), with the same line per entry as hashTree; an absent path hashes as absent. Two trees agree
 * on these paths exactly when the digests are equal. `xattrs: false`: the caller knows that none of
 * them has an extended attribute (no getfattr is run).
 */
export async function hashPaths(
  root: string,
  paths: readonly string[],
  options: { xattrs?: boolean } = {},
): Promise<TreeHash> {
  return hashEntries(root, [...new Set(paths)].sort(), options.xattrs ?? true);
}

async function hashEntries(
  root: string,
  only: string[] | undefined,
  xattrs = true,
  pace?: ReadPace,
  linksAmong?: (relative: string) => boolean,
): Promise<TreeHash> {
  const started = performance.now();
  const absoluteOf = (relative: string): string => (relative === '.' ? root : path.join(root, relative));
  let present = only;
  if (only !== undefined) {
    const exists = await Promise.all(
      only.map((relative) => fs.lstat(absoluteOf(relative)).then(() => true, absentOnly)),
    );
    present = only.filter((_, i) => exists[i]);
  }
  const attributes =
    xattrs || only === undefined
      ? await readXattrs(root, present?.map(absoluteOf))
      : new Map<string, string>();
  const lines = new Map<string, string>();
  const firstPathOfInode = new Map<string, string>();
  const total = createHash('sha256');
  let bytes = 0;
  // Files are visited one at a time, so one read buffer serves the whole walk.
  const buffer = Buffer.allocUnsafe(1024 * 1024);

  const visit = async (relative: string, descend: boolean): Promise<void> => {
    const absolute = absoluteOf(relative);
    const stat = await fs.lstat(absolute).catch(absentOnly);
    if (stat === false) {
      const line = `${relative}\0absent`;
      total.update(`${line}\n`);
      lines.set(relative, createHash('sha256').update(line).digest('hex'));
      return;
    }
    const type = typeOf(stat);
    let content = '';
    if (type === 'f') {
      content = await hashFile(absolute, buffer, pace);
      bytes += stat.size;
    } else if (type === 'l') content = await fs.readlink(absolute);
    else if (type === 'c' || type === 'b') content = String(stat.rdev);
    let link = '';
    if (type !== 'd' && stat.nlink > 1 && (linksAmong === undefined || linksAmong(relative))) {
      const key = `${stat.dev}:${stat.ino}`;
      const first = firstPathOfInode.get(key);
      if (first === undefined) firstPathOfInode.set(key, relative);
      link = first ?? (linksAmong === undefined ? relative : '');
    }
    const size = type === 'd' ? '' : String(stat.size);
    const line = [
      relative,
      type,
      (stat.mode & 0o7777).toString(8),
      stat.uid,
      stat.gid,
      size,
      content,
      link,
      attributes.get(relative) ?? '',
    ].join('\0');
    total.update(`${line}\n`);
    lines.set(relative, createHash('sha256').update(line).digest('hex'));
    if (type === 'd' && descend) {
      const names = (await fs.readdir(absolute)).sort();
      for (const name of names) await visit(relative === '.' ? name : path.join(relative, name), true);
    }
  };
  if (only === undefined) await visit('.', true);
  else for (const relative of only) await visit(relative, false);
  return {
    digest: total.digest('hex'),
    entries: lines.size,
    bytes,
    lines,
    durationMs: performance.now() - started,
  };
}

/** `false` for a path that does not exist; any other error is thrown. */
function absentOnly(error: unknown): false {
  if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return false;
  throw error;
}

/** Up to `limit` paths whose entries differ between two hashes (present in one only, or different). */
export function differingPaths(a: TreeHash, b: TreeHash, limit = 10): string[] {
  const out: string[] = [];
  for (const [p, line] of a.lines) {
    if (b.lines.get(p) !== line) out.push(p);
    if (out.length >= limit) return out;
  }
  for (const p of b.lines.keys()) {
    if (!a.lines.has(p)) out.push(p);
    if (out.length >= limit) break;
  }
  return out;
}
