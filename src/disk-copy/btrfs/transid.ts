/**
 * What changed in a btrfs subvolume after a transaction, found without any snapshot: the pool's
 * buffered data is written out and committed, and the subvolume's tree is searched for the items
 * newer than that transaction (transid-search.py, which does the ioctls Node has no binding for).
 * The search skips every node older than the transaction, so its cost follows the change, not the
 * number of files, and no snapshot has to share the tree: the writes of the service and of the sync
 * then copy no shared node (docs/disk-copy.md, "Final sync").
 *
 * `planTransidSync` turns the changed inodes into what a sync must do on the target, falling back to
 * a whole-file copy whenever the new extents cannot be all that changed (bench/transid-rules-probe.py
 * shows each case on this kernel).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  UnderstudyError,
  exec,
  isErrno,
  isUnderstudyError,
  spawnProcess,
  type SpawnedProcess,
} from '../../core/index.ts';
import { anyXattrs, differingPaths, hashPaths } from '../tree-hash.ts';
import { applyPlan, planApply, planPaths } from './apply-paths.ts';
import { differingPatches, patchFiles, type FilePatch } from './patch-files.ts';
import { addSubtree, join } from './tree-paths.ts';

const HELPER = fileURLToPath(new URL('./transid-search.py', import.meta.url));

/** More changed inodes than this and the search gives up (the caller falls back). */
const DEFAULT_LIMIT = 100_000;

const inodeSchema = z.object({
  ino: z.number().int(),
  kind: z.enum(['dir', 'file', 'symlink', 'other']),
  /** Created after the transaction searched from. */
  created: z.boolean(),
  size: z.number().int().nonnegative(),
  /** Bytes allocated to its extents (a punched hole lowers it without a new extent). */
  nbytes: z.number().int().nonnegative(),
  nlink: z.number().int().nonnegative(),
  /** Overwritten in place: its extents keep their transid. */
  nocow: z.boolean(),
  /** The transaction that last changed the inode's item (absent from an older helper's answer). */
  transid: z.number().int().optional(),
  /** Every name, relative to the subvolume ('' for its top). */
  paths: z.array(z.string()),
  /** A name whose directory entry is newer: created, renamed or linked since. */
  newerEntry: z.boolean(),
  /** Its data is in the metadata (a new inline extent). */
  inline: z.boolean(),
  /** [offset, length] of its file extents newer than the transaction searched from. */
  extents: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])),
  /**
   * Asked with `markAt`, for a regular file (not nodatacow) whose item was last changed in that
   * transaction: what it holds (fields, newer extents, extended attributes; `file_mark` in the
   * helper), to compare with the mark a sync that fsynced it recorded (TransidBase.wrote.marks).
   */
  mark: z.string().optional(),
});
export type ChangedInode = z.infer<typeof inodeSchema>;

const fsyncedSchema = z.object({
  through: z.number().int().positive(),
  marks: z.record(z.string(), z.string()),
});
/**
 * A sync's writes made durable by fsync: the newest transaction when they were (a later write may
 * share it) and each fsynced regular file's mark (ChangedInode.mark), by path.
 */
export type FsyncedWrites = z.infer<typeof fsyncedSchema>;

const lineSchema = z.union([
  z.object({ error: z.string() }),
  z.object({
    transid: z.number().int().positive(),
    uuid: z.string().regex(/^[0-9a-f-]{36}$/),
    createdIn: z.number().int().nonnegative().optional(),
  }),
  z.object({ inode: inodeSchema }),
  z.object({ overflow: z.literal(true), reason: z.string().optional() }),
]);

/** A subvolume's committed transaction and its UUID (another subvolume in its place has another). */
export interface TransidMark {
  transid: number;
  uuid: string;
}

/** The transaction that created the subvolume: a snapshot holds its source's changes up to it. */
type Created = { createdIn?: number };

export type TransidChanges =
  /** The committed transaction (the next search starts after it) and the inodes changed before it. */
  | (TransidMark & Created & { inodes: ChangedInode[]; overflow?: undefined })
  /** Too many changes, or a name the list cannot carry: sync without the list. */
  | (TransidMark & Created & { overflow: true; reason: string });

const searchFailed = (subvolume: string, why: string, cause?: unknown): UnderstudyError =>
  new UnderstudyError('DISK_SYNC_FAILED', `Finding what changed in ${subvolume} failed: ${why}`, {
    ...(cause ? { cause } : {}),
    hint: 'Nothing was written. Check that the path is a btrfs subvolume and python3 is installed, then run the sync again.',
  });

/** Bytes one search may answer (an inode's line is bounded by its names; the limit bounds the lines). */
const MAX_ANSWER_BYTES = 256 << 20;

/**
 * Commits the pool of `subvolume` (its buffered data written out first) and lists the inodes changed
 * in it after transaction `since`, in a python3 process of its own, or through `searcher` (kept
 * running: no process to start). Throws DISK_SYNC_FAILED when the search fails.
 */
export async function changesSince(
  subvolume: string,
  since: number,
  options: {
    limit?: number;
    timeoutMs?: number;
    searcher?: TransidSearcher;
    /** Mark the files last changed in this transaction (through the searcher only: ChangedInode.mark). */
    markAt?: number;
  } = {},
): Promise<TransidChanges> {
  const limit = options.limit ?? DEFAULT_LIMIT;
  if (options.searcher)
    return options.searcher.search(subvolume, since, {
      limit,
      timeoutMs: options.timeoutMs,
      ...(options.markAt === undefined ? {} : { markAt: options.markAt }),
    });
  let stdout: string;
  try {
    stdout = (
      await exec(['python3', HELPER, subvolume, String(since), '--limit', String(limit)], {
        timeoutMs: options.timeoutMs ?? 120_000,
        maxBuffer: MAX_ANSWER_BYTES,
      })
    ).stdout;
  } catch (error) {
    if (!isUnderstudyError(error)) throw error;
    throw searchFailed(subvolume, error.message, error);
  }
  return parseAnswer(subvolume, stdout.split('\n'), limit);
}

/** The lines of one search (transid-search.py's file comment) as TransidChanges. */
function parseAnswer(subvolume: string, lines: readonly string[], limit: number): TransidChanges {
  let mark: (TransidMark & Created) | undefined;
  const inodes: ChangedInode[] = [];
  for (const [n, line] of lines.entries()) {
    if (line === '') continue;
    const parsed = lineSchema.safeParse(parseJson(line));
    if (!parsed.success) throw searchFailed(subvolume, `line ${n + 1} of its answer is not understood`);
    const value = parsed.data;
    if ('error' in value) throw searchFailed(subvolume, value.error);
    if ('transid' in value)
      mark = {
        transid: value.transid,
        uuid: value.uuid,
        ...(value.createdIn === undefined ? {} : { createdIn: value.createdIn }),
      };
    else if (mark === undefined) break;
    else if ('overflow' in value)
      return { ...mark, overflow: true, reason: value.reason ?? `more than ${limit} inodes changed` };
    else inodes.push(value.inode);
  }
  if (mark === undefined) throw searchFailed(subvolume, 'its answer named no transaction');
  return { ...mark, inodes };
}

/**
 * The most paths a sync makes durable one by one (fsync) rather than by a commit of the pool: an
 * fsync costs about 0.9 ms whatever the disk holds, a commit 2–4 ms growing with the files
 * (bench/durable-by-fsync.py), so past a few paths the commit costs less.
 */
const FSYNC_LIMIT = 8;

/** A transaction no subvolume reaches: a search after it finds nothing and costs a commit. */
const BEYOND_EVERY_TRANSACTION = 2 ** 52;

/**
 * Commits the pool of `subvolume` (its buffered data written out first) and returns the committed
 * transaction with the subvolume's UUID: every later change of the subvolume has a newer transid.
 */
export async function markOf(subvolume: string, searcher?: TransidSearcher): Promise<TransidMark> {
  const { transid, uuid } = await changesSince(
    subvolume,
    BEYOND_EVERY_TRANSACTION,
    searcher ? { searcher } : {},
  );
  return { transid, uuid };
}

/**
 * The transaction that created subvolume `subvolume` (a read-only snapshot holds every change its
 * source committed up to it, and none after). Throws DISK_SYNC_FAILED when the helper cannot say.
 */
export async function createdIn(subvolume: string): Promise<number> {
  const answer = await changesSince(subvolume, BEYOND_EVERY_TRANSACTION);
  if (answer.createdIn === undefined || answer.createdIn === 0)
    throw searchFailed(subvolume, 'it did not name the transaction that created the subvolume');
  return answer.createdIn;
}

/**
 * The search helper kept running (`transid-search.py --serve`), so that a sync inside the hold of a
 * switch starts no process: started before the hold, closed after. One search at a time.
 */
export class TransidSearcher {
  private queue: Promise<unknown> = Promise.resolve();
  private stderr = '';

  private constructor(
    private readonly process: SpawnedProcess,
    private readonly lines: AsyncIterator<string>,
  ) {
    process.child.stderr?.on('data', (chunk: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += chunk.toString();
    });
  }

  static start(): TransidSearcher {
    const spawned = spawnProcess(['python3', HELPER, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = readline.createInterface({ input: spawned.child.stdout!, crlfDelay: Infinity });
    return new TransidSearcher(spawned, lines[Symbol.asyncIterator]());
  }

  search(
    subvolume: string,
    since: number,
    options: { limit?: number; timeoutMs?: number; markAt?: number } = {},
  ): Promise<TransidChanges> {
    const limit = options.limit ?? DEFAULT_LIMIT;
    const body = {
      subvolume,
      since,
      limit,
      ...(options.markAt === undefined ? {} : { markAt: options.markAt }),
    };
    return this.request(body, subvolume, options.timeoutMs).then((answer) =>
      parseAnswer(subvolume, answer, limit),
    );
  }

  /**
   * A read-only snapshot of subvolume `source` at `target` (absent; its directory must exist), made
   * by the helper: no `btrfs` process to start. Throws DISK_SYNC_FAILED.
   */
  async snapshot(source: string, target: string, options: { timeoutMs?: number } = {}): Promise<void> {
    const answer = await this.request({ snapshot: source, target }, source, options.timeoutMs ?? 60_000);
    const last = answer.length === 1 ? parseJson(answer[0]!) : undefined;
    if (last && typeof last === 'object' && 'snapshotted' in last) return;
    const error = last && typeof last === 'object' && 'error' in last ? String(last.error) : 'no answer';
    throw new UnderstudyError('DISK_SYNC_FAILED', `The snapshot of ${source} at ${target} failed: ${error}`, {
      hint: 'Nothing was copied. Check the pool (btrfs filesystem usage) and run the sync again.',
    });
  }

  /**
   * Makes the paths `relative` of subvolume `root` durable by fsync, starting no commit, and marks
   * each regular file it fsynced as it is then, after transaction `since` (`file_mark` in the
   * helper). Resolves the pool's newest transaction (`through`: it holds these writes or follows
   * the one that does, and a later write may share it) with the marks; or undefined, having fsynced
   * nothing, when a path cannot be fsynced (a symlink, a special file) or there are more than
   * FSYNC_LIMIT (one commit then costs less): the caller commits. See `fsync_paths` in the helper.
   * Throws DISK_SYNC_FAILED.
   */
  async fsyncPaths(
    root: string,
    relative: readonly string[],
    since: number,
  ): Promise<FsyncedWrites | undefined> {
    const answer = await this.request(
      { fsync: root, paths: relative, limit: FSYNC_LIMIT, since },
      root,
      60_000,
    );
    const last = answer.length === 1 ? parseJson(answer[0]!) : undefined;
    if (last && typeof last === 'object' && 'fsynced' in last) {
      if (last.fsynced === null) return undefined;
      const parsed = fsyncedSchema.safeParse(last.fsynced);
      if (parsed.success) return parsed.data;
    }
    const error = last && typeof last === 'object' && 'error' in last ? String(last.error) : 'no answer';
    throw searchFailed(root, `making the synced paths durable failed: ${error}`);
  }

  /**
   * Whether any of the given absolute paths has an extended attribute (ACLs included; links not
   * followed), asked of the helper: no `getfattr` process to start. Throws DISK_SYNC_FAILED.
   */
  async anyXattrs(paths: readonly string[]): Promise<boolean> {
    if (paths.length === 0) return false;
    const answer = await this.request({ xattrs: paths }, paths[0]!, 60_000);
    const last = answer.length === 1 ? parseJson(answer[0]!) : undefined;
    if (last && typeof last === 'object' && 'withXattrs' in last && Array.isArray(last.withXattrs))
      return last.withXattrs.length > 0;
    const error = last && typeof last === 'object' && 'error' in last ? String(last.error) : 'no answer';
    throw searchFailed(paths[0]!, `reading extended attributes failed: ${error}`);
  }

  /** Sends one request and reads its answer's lines (up to `{"end": true}`), one request at a time. */
  private request(body: object, subject: string, timeoutMs = 120_000): Promise<string[]> {
    const run = async (): Promise<string[]> => {
      const stdin = this.process.child.stdin;
      if (!stdin || stdin.destroyed) throw searchFailed(subject, 'the search helper is closed');
      stdin.write(`${JSON.stringify(body)}\n`);
      const answer: string[] = [];
      let bytes = 0;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          this.process.child.kill('SIGKILL');
          reject(searchFailed(subject, `no answer within ${timeoutMs} ms (the helper was ended)`));
        }, timeoutMs);
      });
      timeout.catch(() => undefined); // raced below; a timer firing between two reads must not go unhandled
      try {
        for (;;) {
          const next = await Promise.race([this.lines.next(), timeout]);
          if (next.done)
            throw searchFailed(
              subject,
              `the search helper ended${this.stderr ? `: ${this.stderr.trim()}` : ''}`,
            );
          if (next.value === '{"end": true}') break;
          bytes += next.value.length;
          if (bytes > MAX_ANSWER_BYTES) {
            this.process.child.kill('SIGKILL');
            throw searchFailed(subject, `its answer passed ${MAX_ANSWER_BYTES} bytes (the helper was ended)`);
          }
          answer.push(next.value);
        }
      } finally {
        clearTimeout(timer);
      }
      return answer;
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Resolves once the helper answers (python3 takes about 100 ms to start): a preparation waits for
   * it, so that the hold's first request does not.
   */
  async ready(timeoutMs = 30_000): Promise<void> {
    const answer = await this.request({ ping: true }, 'the search helper', timeoutMs);
    if (answer.length !== 1 || answer[0] !== '{"pong": true}')
      throw searchFailed(
        'the search helper',
        `it answered a ping with ${JSON.stringify(answer).slice(0, 200)}`,
      );
  }

  /** Whether the helper was ended (close, or a failed request): it answers nothing more. */
  get closed(): boolean {
    const stdin = this.process.child.stdin;
    const child = this.process.child;
    return (
      !stdin || stdin.destroyed || stdin.writableEnded || child.exitCode !== null || child.signalCode !== null
    );
  }

  /** Ends the helper (it exits once its input ends). */
  async close(): Promise<void> {
    this.process.child.stdin?.end();
    await this.process.done;
  }
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

/** What a sync does on the target for a list of changed inodes. */
export interface TransidPlan {
  /** Directories whose names, attributes and times are made the source's (names gone are removed). */
  directories: string[];
  /**
   * Directories that existed before but came under a new name (renamed or linked in): what they hold
   * did not change, so it is not listed, and is copied whole.
   */
  subtrees: string[];
  /** Paths copied whole (created, renamed or linked since, inline, nocow, hard-linked, not a regular file). */
  whole: string[];
  /**
   * Regular files patched in place: the ranges written (none: attributes and size only). The caller
   * then compares the allocated size with the source's, which a punched hole lowers without a new
   * extent, and copies the file whole when they differ.
   */
  patches: { relative: string; ranges: [number, number][]; size: number }[];
}

/** See TransidPlan; pure. */
export function planTransidSync(inodes: readonly ChangedInode[]): TransidPlan {
  const plan: TransidPlan = { directories: [], subtrees: [], whole: [], patches: [] };
  for (const inode of inodes) {
    if (inode.kind === 'dir') {
      const paths = inode.paths.map(listedName);
      plan.directories.push(...paths);
      if (inode.newerEntry && !inode.created) plan.subtrees.push(...paths);
      continue;
    }
    const whole =
      inode.kind !== 'file' ||
      inode.created ||
      inode.inline ||
      inode.nocow ||
      inode.nlink > 1 ||
      inode.newerEntry;
    if (whole) plan.whole.push(...inode.paths);
    else
      for (const relative of inode.paths)
        plan.patches.push({ relative, ranges: inode.extents, size: inode.size });
  }
  plan.directories.sort();
  plan.subtrees.sort();
  plan.whole.sort();
  plan.patches.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
  return plan;
}

export type TransidSyncOutcome =
  | {
      /** The source's transaction the next sync starts after. */
      transid: number;
      /**
       * The target's transaction that committed the sync (durable, through the helper): its later
       * changes are not the sync's.
       */
      targetTransid?: number;
      /**
       * The target's writes were made durable by fsync (TransidSyncOptions.durable `'files'`), not by a
       * commit: their transaction may still be running (a later write may share it).
       */
      fsynced?: FsyncedWrites;
      /** Paths that differed after the copy and were copied whole (someone else wrote them). */
      repaired?: number;
      /**
       * The paths this sync wrote that hold the source's content at its check (not `changedDuring`,
       * not repaired): before `targetTransid`, a change of the target to them is this sync's.
       */
      written: string[];
      /** Paths copied whole (with the names removed), files patched, file bytes written. */
      whole: number;
      patched: number;
      bytes: number;
      /**
       * A `live` pass: paths that differed at its check because the source changed them again
       * after its transaction (the next pass carries them).
       */
      changedDuring?: number;
      searchMs: number;
      copyMs: number;
      verifyMs: number;
      overflow?: undefined;
    }
  /**
   * Nothing was written: the caller syncs another way (too many changes, or what only rsync copies);
   * `paths`, when the changes were found, lists every path to copy whole (with rsync), and `transid`
   * is the transaction the search committed (as on success).
   */
  | { overflow: true; reason: string; paths?: string[]; transid?: number };

const child = (dir: string, name: string): string => (dir === '.' ? name : path.join(dir, name));

/**
 * The paths with their directories (the top, '.', has none): a copy that writes an entry changes its
 * directory's times, which rsync sets back only for a directory it is given.
 */
export const withDirectories = (paths: readonly string[]): string[] => [
  ...new Set(paths.flatMap((p) => (p === '.' ? [p] : [p, path.dirname(p)]))),
];

/** A changed inode's name as the sync lists it: the subvolume's top ('' in the search) is '.'. */
export const listedName = (p: string): string => (p === '' ? '.' : p);

/** Parent directories of `relative`, nearest first ('.' last). */
export function ancestorsOf(relative: string): string[] {
  const out: string[] = [];
  for (let p = path.dirname(relative); ; p = path.dirname(p)) {
    out.push(p);
    if (p === '.' || p === '/') return out;
  }
}

/**
 * Of the paths a pass over a live source found different on its target, those the source's changes
 * after the pass's transaction do not explain; pure. A difference is explained, so that the next pass
 * (which starts from that transaction) carries it, when the path belongs to an inode changed since
 * (`later`); or lies under a directory created or renamed since (its subtree is copied whole); or is
 * gone from the source (`absentFromSource`) and the nearest directory above it that the source still
 * has changed since (its names are reconciled). Anything else the next pass would not look at again.
 */
export function unexplainedDifferences(
  differing: readonly string[],
  later: readonly ChangedInode[],
  absentFromSource: ReadonlySet<string>,
): string[] {
  const changed = new Set(later.flatMap((i) => i.paths.map(listedName)));
  const dirs = later.filter((i) => i.kind === 'dir');
  const changedDirs = new Set(dirs.flatMap((i) => i.paths.map(listedName)));
  const wholeDirs = new Set(
    dirs.filter((i) => i.created || i.newerEntry).flatMap((i) => i.paths.map(listedName)),
  );
  return differing.filter((p) => {
    if (changed.has(p)) return false;
    const above = p === '.' ? [] : ancestorsOf(p);
    if (above.some((a) => wholeDirs.has(a))) return false;
    if (!absentFromSource.has(p)) return true;
    const nearest = above.find((a) => !absentFromSource.has(a)) ?? '.';
    return !changedDirs.has(nearest);
  });
}

const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    (error: unknown) => {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return false;
      throw error;
    },
  );

async function namesIn(dir: string): Promise<Set<string>> {
  try {
    return new Set(await fs.readdir(dir));
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return new Set();
    throw error;
  }
}

/** Allocated 512-byte blocks, or -1 when `p` is not a single-named regular file. */
async function blocksOf(p: string): Promise<number> {
  const stat = await fs.lstat(p).catch(() => undefined);
  return stat?.isFile() && stat.nlink === 1 ? stat.blocks : -1;
}

export interface TransidSyncOptions {
  source: string;
  target: string;
  since: number;
  /** The search helper kept running (see TransidSearcher); else a process is started. */
  searcher?: TransidSearcher;
  /**
   * Paths made the source's whatever the search says (copied whole, never patched, or removed when
   * the source lacks them): what the target changed on its own since it held what the source held.
   */
  extra?: readonly string[];
  /**
   * Directories whose names are made the source's whatever the search says (directories the target
   * changed on its own): names only the target has are removed, names only the source has copied.
   */
  extraDirectories?: readonly string[];
  /** The source's UUID the transaction `since` belongs to: another fails the sync (DISK_SYNC_FAILED). */
  sourceUuid?: string;
  /**
   * How the target's writes are made durable at the end: `true` (the default) commits its pool;
   * `'files'` (with a `searcher`) fsyncs each written path instead, starting no commit, and marks
   * the files after `targetSince` (TransidSearcher.fsyncPaths); it commits only when it cannot; `false`
   * leaves them to the pool's next commit.
   */
  durable?: boolean | 'files';
  /**
   * The target's transaction its base is at (the pair's record of it): with durable `'files'`, the
   * files' marks cover what changed after it, as the next sync's search of the target will.
   */
  targetSince?: number;
  /** Handed the changes the search found (the write history of a live copy's pass). */
  onChanges?: (inodes: readonly ChangedInode[]) => void;
  /**
   * The source keeps changing (a catch-up pass while the service writes): the check accepts a path
   * that differs when the source changed it again after the pass's transaction (a second search says
   * so; see unexplainedDifferences), since the next pass, which starts from that transaction, carries
   * it; any other difference fails the pass. A path that vanishes from the source under the copy
   * fails the pass too (DISK_SYNC_FAILED, nothing to undo: run it again from the same transaction).
   */
  live?: boolean;
}

/**
 * Makes `target` hold what `source` holds, from the changes of `source` after transaction `since`
 * (the target held what the source held then, and nobody wrote it since): the changed directories'
 * names reconciled, new or renamed entries and unpatchable files copied whole, the others patched
 * with their new extents (then copied whole if their allocated size differs from the source's: a
 * punched hole), the result checked by hash and written out (syncfs). The source must not change
 * meanwhile (the hold of a switch), unless `live`. Cost follows the change, not the files.
 */
export async function syncByTransid(o: TransidSyncOptions): Promise<TransidSyncOutcome> {
  if (!o.live) return syncOnce(o);
  try {
    return await syncOnce(o);
  } catch (error) {
    if (!isErrno(error, 'ENOENT') && !isErrno(error, 'ENOTDIR')) throw error;
    throw new UnderstudyError(
      'DISK_SYNC_FAILED',
      `A pass of ${o.source} onto ${o.target} failed: a path vanished from the source under it (${(error as Error).message})`,
      {
        cause: error,
        details: { vanished: true },
        hint: 'The service changed the disk under the pass. Run the pass again from the same transaction: it carries what changed since.',
      },
    );
  }
}

/** syncByTransid without the live pass's error wording. */
async function syncOnce(o: TransidSyncOptions): Promise<TransidSyncOutcome> {
  let started = performance.now();
  const changes = await changesSince(o.source, o.since, o.searcher ? { searcher: o.searcher } : {});
  if (o.sourceUuid !== undefined && changes.uuid !== o.sourceUuid)
    throw new UnderstudyError(
      'DISK_SYNC_FAILED',
      `${o.source} is not the subvolume whose transaction ${o.since} the sync starts from (UUID ${changes.uuid}, expected ${o.sourceUuid})`,
      {
        details: { replaced: true },
        hint: 'The disk was replaced since the pair was last synced: sync it whole.',
      },
    );
  if (changes.overflow) return { overflow: true, reason: changes.reason };
  o.onChanges?.(changes.inodes);
  const plan = planTransidSync(changes.inodes);
  const reconciled = [...new Set([...plan.directories, ...(o.extraDirectories ?? [])])];
  const listed = new Set<string>([...plan.whole, ...reconciled, ...(o.extra ?? [])]);
  for (const dir of reconciled) {
    const [here, there] = await Promise.all([namesIn(join(o.source, dir)), namesIn(join(o.target, dir))]);
    for (const name of there) if (!here.has(name)) listed.add(child(dir, name));
    for (const name of here) if (!there.has(name)) listed.add(child(dir, name));
  }
  for (const dir of plan.subtrees) await addSubtree(o.source, dir, listed);
  // Writing an entry changes its directory's times on the target: the directories of the listed
  // paths are listed too, so that the copy sets their times back afterwards.
  for (const p of [...listed]) if (p !== '.') listed.add(path.dirname(p));
  const patches: FilePatch[] = [];
  for (const p of plan.patches)
    if (!listed.has(p.relative) && (await blocksOf(join(o.target, p.relative))) >= 0)
      patches.push({ relative: p.relative, edit: { ranges: p.ranges, truncatedTo: [] } });
    else {
      listed.add(p.relative);
      listed.add(path.dirname(p.relative));
    }
  const searchMs = performance.now() - started;
  // The patch sets owner, mode and times, not extended attributes.
  const everyPath = (): string[] => [...new Set([...listed, ...patches.map((p) => p.relative)])].sort();
  const hasXattrs = (paths: readonly string[]): Promise<boolean> =>
    o.searcher ? o.searcher.anyXattrs(paths) : anyXattrs(paths);
  if (await hasXattrs(patches.flatMap((p) => [join(o.source, p.relative), join(o.target, p.relative)])))
    return {
      overflow: true,
      reason: 'a changed file has extended attributes',
      paths: everyPath(),
      transid: changes.transid,
    };

  const transid = changes.transid;
  started = performance.now();
  const copyWhole = async (paths: Set<string>): Promise<number | undefined> => {
    const sorted = [...paths].sort();
    const applied = await planApply({ source: o.source, target: o.target, paths: sorted });
    if (!applied || (await hasXattrs(planPaths({ source: o.source, target: o.target, plan: applied }))))
      return undefined;
    return applyPlan({ source: o.source, target: o.target, plan: applied });
  };
  let bytes = await copyWhole(listed);
  if (bytes === undefined)
    return {
      overflow: true,
      reason: 'a changed path needs rsync (extended attributes, a special file)',
      paths: everyPath(),
      transid,
    };
  bytes += await patchFiles({ source: o.source, target: o.target, patches });
  // A punched hole lowers the source's allocated size without a new extent: such a file goes whole.
  const punched = new Set<string>();
  for (const p of patches)
    if ((await blocksOf(join(o.source, p.relative))) !== (await blocksOf(join(o.target, p.relative))))
      punched.add(p.relative);
  if (punched.size > 0) {
    const more = await copyWhole(new Set([...punched, ...[...punched].map((p) => path.dirname(p))]));
    // Patched files are regular and were found without extended attributes above.
    if (more === undefined)
      throw new UnderstudyError(
        'DISK_SYNC_FAILED',
        `The sync of ${o.source} onto ${o.target} could not copy whole the files it patched: ${[...punched].slice(0, 10).join(', ')}`,
        {
          hint: 'The target is partly synced. Run the sync again with a whole copy (or rsync) of these paths.',
        },
      );
    bytes += more;
    for (const p of punched) listed.add(p).add(path.dirname(p));
  }
  const copyMs = performance.now() - started;

  started = performance.now();
  // Written out and committed (or fsynced) before the check: through the helper, a commit's
  // transaction is known, and a write of anyone else to a path of this sync before it is seen by
  // the check.
  let fsynced: FsyncedWrites | undefined;
  const commit = async (): Promise<number | undefined> => {
    if (o.durable === false) return undefined;
    if (o.durable === 'files' && o.searcher) {
      const now = await o.searcher.fsyncPaths(o.target, everyPath(), o.targetSince ?? 0);
      if (now) {
        // A second time (after a repair) re-marks the files it fsyncs again.
        fsynced = { through: now.through, marks: { ...fsynced?.marks, ...now.marks } };
        return undefined;
      }
    }
    if (o.searcher) return (await markOf(o.target, o.searcher)).transid;
    await exec(['sync', '-f', o.target]);
    return undefined;
  };
  const targetTransid = await commit();
  const checkedPatches = patches.filter((p) => !punched.has(p.relative));
  const [expected, actual, differing] = await Promise.all([
    hashPaths(o.source, [...listed], { xattrs: false }),
    hashPaths(o.target, [...listed], { xattrs: false }),
    differingPatches({ source: o.source, target: o.target, patches: checkedPatches }),
  ]);
  let changedDuring = 0;
  let repaired = 0;
  /** Paths that differed at the check (changed again by the source since, or repaired). */
  const differed = new Set<string>();
  if (expected.digest !== actual.digest || differing.length > 0) {
    const paths = [...new Set([...differingPaths(expected, actual, Infinity), ...differing])];
    let unexplained = paths;
    if (o.live) {
      const later = await changesSince(o.source, transid, o.searcher ? { searcher: o.searcher } : {});
      if (later.overflow)
        throw new UnderstudyError(
          'DISK_SYNC_VERIFY_FAILED',
          `A pass of ${o.source} onto ${o.target} could not be checked: ${paths.length} paths differ and the source changed too much since to tell why (${later.reason})`,
          {
            hint: 'The service writes faster than a pass can follow: throttle it, or sync with the service quiesced.',
          },
        );
      const absent = new Set<string>();
      for (const p of paths)
        for (const q of [p, ...(p === '.' ? [] : ancestorsOf(p))])
          if (!absent.has(q) && !(await exists(join(o.source, q)))) absent.add(q);
      unexplained = unexplainedDifferences(paths, later.inodes, absent);
      changedDuring = paths.length - unexplained.length;
    }
    for (const p of paths) differed.add(p);
    if (unexplained.length > 0) {
      // Someone else wrote these paths of the target after the copy (a standby's service still
      // running): the source's version wins, copied whole.
      const repair = new Set(withDirectories(unexplained));
      const more = await copyWhole(repair);
      const [a, b] = await Promise.all([
        hashPaths(o.source, [...repair], { xattrs: false }),
        hashPaths(o.target, [...repair], { xattrs: false }),
      ]);
      const still = more === undefined ? unexplained : differingPaths(a, b, Infinity);
      if (still.length > 0)
        throw new UnderstudyError(
          'DISK_SYNC_VERIFY_FAILED',
          `After the sync of ${o.source} onto ${o.target}, these paths differ: ${still.slice(0, 10).join(', ')}`,
          { hint: 'Run the sync again; if the paths still differ, report it with these paths.' },
        );
      bytes += more ?? 0;
      repaired = unexplained.length;
      for (const p of repair) {
        listed.add(p);
        differed.add(p);
      }
      await commit();
    }
  }
  const verifyMs = performance.now() - started;
  return {
    transid,
    ...(targetTransid === undefined ? {} : { targetTransid }),
    ...(fsynced === undefined ? {} : { fsynced }),
    written: [...new Set([...listed, ...patches.map((p) => p.relative)])].filter((p) => !differed.has(p)),
    ...(repaired > 0 ? { repaired } : {}),
    whole: listed.size,
    patched: checkedPatches.length,
    bytes,
    ...(o.live ? { changedDuring } : {}),
    searchMs,
    copyMs,
    verifyMs,
  };
}
