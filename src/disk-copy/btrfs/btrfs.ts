/**
 * The btrfs operations the disk copy needs, each one external command through core's exec:
 * snapshots, deletion, filesystem identity, free space, and the send → receive pipe that the history
 * parser taps.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  UnderstudyError,
  exec,
  isUnderstudyError,
  spawnProcess,
  formatArgv,
  isErrno,
  type ExecResult,
  type SpawnedProcess,
} from '../../core/index.ts';
import { formatBytes } from '../history.ts';

const BTRFS = 'btrfs';

/** statfs f_type of btrfs (BTRFS_SUPER_MAGIC). */
const BTRFS_MAGIC = 0x9123683e;

/** True when `target` is the root of a btrfs subvolume (inode 256 on btrfs); no process is started. */
export async function isSubvolume(target: string): Promise<boolean> {
  try {
    const stat = await fs.stat(target);
    if (!stat.isDirectory() || stat.ino !== 256) return false;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
  return isBtrfs(target);
}

export async function isBtrfs(target: string): Promise<boolean> {
  return (await fs.statfs(target)).type === BTRFS_MAGIC;
}

/**
 * An identifier of the btrfs filesystem holding `target`. statfs' f_fsid on btrfs is the filesystem
 * UUID folded to 64 bits and XORed with the id of the subvolume the path lies in; XORing the root id
 * back gives a value equal for every path of one filesystem.
 */
export async function filesystemId(target: string): Promise<string> {
  const [fsid, rootid] = await Promise.all([
    exec(['stat', '-f', '-c', '%i', target]),
    exec([BTRFS, 'inspect-internal', 'rootid', target]),
  ]);
  const value = BigInt(`0x${fsid.stdout.trim()}`) ^ BigInt(rootid.stdout.trim());
  return value.toString(16);
}

export async function snapshot(options: {
  source: string;
  target: string;
  readOnly: boolean;
}): Promise<void> {
  const argv = [
    BTRFS,
    'subvolume',
    'snapshot',
    ...(options.readOnly ? ['-r'] : []),
    options.source,
    options.target,
  ];
  await exec(argv, { timeoutMs: 60_000 });
}

/**
 * Commits the btrfs filesystem holding `target` and waits until its cleaner thread has dropped every
 * subvolume deleted so far (`btrfs subvolume sync`). A deleted snapshot is dropped in the background
 * after the commit that records its deletion, in transactions of its own; while that runs, every
 * commit — a snapshot's — waits for the cleaner's transaction and writes what it freed, so a snapshot
 * taken meanwhile costs what the dropped snapshot held apart from the live tree. The commit first
 * puts deletions not yet committed in the cleaner's hands (without it the wait lasts until the next
 * periodic commit, up to 30 s). Resolves true when the cleaner is done, false when it was not within
 * `timeoutMs` (nothing is undone: it goes on in the background).
 */
export async function settleDeletedSubvolumes(target: string, timeoutMs: number): Promise<boolean> {
  await exec([BTRFS, 'filesystem', 'sync', target], { timeoutMs: 120_000 });
  try {
    await exec([BTRFS, 'subvolume', 'sync', target], { timeoutMs });
    return true;
  } catch (error) {
    if (isUnderstudyError(error) && error.code === 'EXEC_TIMEOUT') return false;
    throw error;
  }
}

/** Deletes a subvolume; a missing one is fine (idempotent). */
export async function deleteSubvolume(target: string): Promise<void> {
  if (!(await isSubvolume(target))) return;
  await exec([BTRFS, 'subvolume', 'delete', target], { timeoutMs: 120_000 });
}

/**
 * Deletes every subvolume directly inside `dir`, then `dir` itself (idempotent). `dir` must be an
 * absolute path below the root: a relative one (say, the holder of an empty stored path, '.') would
 * empty the manager's working directory.
 */
export async function removeStagingDir(dir: string): Promise<void> {
  if (!path.isAbsolute(dir) || path.resolve(dir) === '/')
    throw new UnderstudyError(
      'INTERNAL',
      `Refusing to remove the staging directory ${JSON.stringify(dir)}: it must be an absolute path below /`,
      {
        hint: 'This is a bug in understudy: a stored snapshot path is empty or relative. Nothing was removed.',
      },
    );
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  for (const entry of entries) {
    const child = path.join(dir, entry);
    if (await isSubvolume(child)) await deleteSubvolume(child);
    else await fs.rm(child, { recursive: true, force: true });
  }
  await fs.rmdir(dir);
}

/** Estimated free bytes for new data in the btrfs filesystem of `target`. */
export async function freeBytes(target: string): Promise<number> {
  const result = await exec([BTRFS, 'filesystem', 'usage', '-b', target]);
  const match = /Free \(estimated\):\s+(\d+)/.exec(result.stdout);
  if (!match?.[1])
    throw new UnderstudyError(
      'INTERNAL',
      `Cannot read the free space of ${target} from btrfs filesystem usage`,
    );
  return Number(match[1]);
}

/** Fails with POOL_FULL when the pool cannot hold `needed` bytes, naming the pool and the space missing. */
export async function checkSpace(poolPath: string, needed: number): Promise<void> {
  const free = await freeBytes(poolPath);
  if (free < needed) {
    throw new UnderstudyError(
      'POOL_FULL',
      `The destination pool ${poolPath} has ${formatBytes(free)} free but the copy needs ${formatBytes(needed)}: ${formatBytes(needed - free)} missing`,
      {
        details: { pool: poolPath, freeBytes: free, neededBytes: needed, missingBytes: needed - free },
      },
    );
  }
}

/** Bytes allocated by the files of a tree (what a full send carries, roughly). */
export async function usedBytes(target: string): Promise<number> {
  const result = await exec(['du', '-s', '-B1', '-x', target], { timeoutMs: 600_000 });
  return Number(result.stdout.split('\t')[0] ?? 0);
}

export interface TransferOptions {
  /** Read-only snapshot to send. */
  snapshot: string;
  /** Read-only snapshot already received at the destination, for an incremental send. */
  parent?: string;
  /** Directory on the destination filesystem where the received subvolume appears (same basename). */
  receiveDir: string;
  signal?: AbortSignal;
  /**
   * When given, the stream passes through this process and every chunk is handed to onChunk before it
   * goes to `btrfs receive` (onChunk may throw to abort). Without it, send's stdout is connected
   * straight to receive's stdin and this process never touches the data (the full pass).
   */
  onChunk?: (chunk: Buffer) => void;
  /** Bytes streamed so far, reported about every 200 ms. */
  onBytes?: (bytes: number) => void;
}

export interface TransferResult {
  bytes: number;
  /** The transfer, then flushing the received data to disk (a pass is done when it is durable). */
  durationMs: number;
}

function stopProcess(proc: SpawnedProcess): void {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
}

/** Bytes a process has written so far (wchar of /proc/<pid>/io), or undefined once it is gone. */
async function bytesWritten(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const io = await fs.readFile(`/proc/${pid}/io`, 'utf8');
    const match = /^wchar:\s+(\d+)/m.exec(io);
    return match?.[1] ? Number(match[1]) : undefined;
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return undefined;
    throw error;
  }
}

/**
 * Streams `btrfs send [-p parent] snapshot` into `btrfs receive receiveDir`, then flushes the
 * destination filesystem. Rejects (after both processes have ended) when either command fails,
 * onChunk throws, or the signal aborts; the partly received subvolume is then left for the caller's
 * cleanup.
 */
export async function transfer(options: TransferOptions): Promise<TransferResult> {
  const started = performance.now();
  const sendArgv = [BTRFS, 'send', '-q', ...(options.parent ? ['-p', options.parent] : []), options.snapshot];
  const receiveArgv = [BTRFS, 'receive', options.receiveDir];
  const send = spawnProcess(sendArgv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const sendOut = send.child.stdout;
  if (!sendOut) throw new UnderstudyError('INTERNAL', 'btrfs send started without a stdout pipe');
  const tapped = options.onChunk !== undefined;
  // Direct mode: receive gets a duplicate of send's stdout; this process closes its own copy in the
  // same tick, before the event loop could read from it.
  const receive = spawnProcess(receiveArgv, { stdio: [tapped ? 'pipe' : sendOut, 'ignore', 'pipe'] });
  if (!tapped) sendOut.destroy();
  let bytes = 0;
  let failure: unknown;
  const fail = (error: unknown): void => {
    failure ??= error;
    stopProcess(send);
    stopProcess(receive);
  };
  const onAbort = (): void =>
    fail(new UnderstudyError('DISK_COPY_CANCELLED', `Copy of ${options.snapshot} cancelled`));
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let poll: NodeJS.Timeout | undefined;
  let polling = true;
  if (tapped) {
    const receiveIn = receive.child.stdin;
    if (!receiveIn) throw new UnderstudyError('INTERNAL', 'btrfs receive started without a stdin pipe');
    receiveIn.on('error', () => {
      /* receive died; its exit status tells why */
    });
    receiveIn.on('drain', () => sendOut.resume());
    let lastReport = 0;
    sendOut.on('data', (chunk: Buffer) => {
      if (failure) return;
      bytes += chunk.length;
      try {
        options.onChunk?.(chunk);
      } catch (error) {
        fail(error);
        return;
      }
      const now = performance.now();
      if (options.onBytes && now - lastReport >= 200) {
        lastReport = now;
        options.onBytes(bytes);
      }
      if (!receiveIn.write(chunk)) sendOut.pause();
    });
    sendOut.on('end', () => receiveIn.end());
  } else {
    // Read every 20 ms until send has written something, then every 200 ms: even a full pass of a
    // second or less reports its bytes while send and receive run (the run's `copy-<disk>:during`
    // crash point waits for that report).
    const read = (): void => {
      poll = setTimeout(
        () => {
          void bytesWritten(send.child.pid).then(
            (written) => {
              if (!polling) return;
              if (written !== undefined) {
                bytes = written;
                options.onBytes?.(bytes);
              }
              read();
            },
            () => {
              if (polling) read();
            },
          );
        },
        bytes > 0 ? 200 : 20,
      );
    };
    read();
  }
  // Whichever command fails first is the cause; the other is stopped (a dead receive would otherwise
  // leave send blocked on a full pipe forever).
  const failed: ExecResult[] = [];
  const watch = (proc: SpawnedProcess, other: SpawnedProcess): Promise<void> =>
    proc.done.then((result) => {
      if (result.exitCode !== 0) {
        failed.push(result);
        stopProcess(other);
      }
    });
  try {
    await Promise.all([watch(send, receive), watch(receive, send)]);
    if (failure) throw failure;
    const first = failed[0];
    if (first) {
      const stderr = first.stderr.trim().split('\n').slice(-8).join('\n');
      throw new UnderstudyError(
        'DISK_COPY_FAILED',
        `${formatArgv(first.argv)} failed${stderr ? `: ${stderr}` : ''}`,
        {
          details: { argv: first.argv, exitCode: first.exitCode, signal: first.signal, stderr },
        },
      );
    }
  } finally {
    polling = false;
    if (poll) clearTimeout(poll);
    options.signal?.removeEventListener('abort', onAbort);
  }
  await exec([BTRFS, 'filesystem', 'sync', options.receiveDir], {
    timeoutMs: 600_000,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { bytes, durationMs: performance.now() - started };
}
