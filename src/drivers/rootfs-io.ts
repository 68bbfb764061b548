/**
 * File I/O inside a directory tree that someone else controls: an LC's root filesystem (its root user
 * may plant symlinks, FIFOs, device nodes or huge files anywhere in it) or an LC's control channel.
 * Paths resolve the way the LC itself sees them — `RESOLVE_IN_ROOT` semantics of openat2(2): symlinks
 * are followed relative to the tree's root, `..` never climbs above it — and the host is never touched
 * through a link.
 *
 * How: Node has no openat(2), but on Linux `/proc/self/fd/<fd>/<name>` is the same lookup as
 * `openat(fd, name)` (the magic link jumps to the directory the fd holds, whatever its path has become).
 * The walk opens one component at a time with `O_PATH | O_NOFOLLOW`, keeps the directory fds it went
 * through, and reads symlinks itself. Every later operation (create, rename, read, list, unlink) is done
 * relative to an fd the walk holds, never by re-resolving a path. Swapping a directory for a symlink while
 * the walk runs can change which in-tree file is hit (as it could for the LC itself) but cannot lead out.
 * Files are opened for reading only after `fstat` on the `O_PATH` fd shows a regular file within the size
 * cap, so a FIFO, a device node or a socket is never opened and a growing file is cut at the cap.
 *
 * Not covered: mount points inside the tree (the host sees none in an LC's disk: the LC's mounts live in
 * its own mount namespace), and the content of an in-tree file changing between two reads. Linux only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UnderstudyError, isErrno } from '../core/index.ts';

/** open(2) flag to get a handle on a path without opening the file (not exported by node:fs). */
const O_PATH = 0o10000000;
const { O_NOFOLLOW, O_DIRECTORY, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NONBLOCK } = fs.constants;
const MAX_SYMLINKS = 40;
/** Default cap on a file read from a tree: what the manager reads from an LC is small. */
export const DEFAULT_MAX_READ_BYTES = 64 * 1024 * 1024;

const at = (dirFd: number, name: string): string => `/proc/self/fd/${dirFd}/${name}`;
const self = (fd: number): string => `/proc/self/fd/${fd}`;

/** Where a path ends after the walk: the directory holding it and its name there (absent for a directory path like "/"). */
interface Resolved {
  /** Every directory fd the walk went through, root first; the last one holds `name`. */
  stack: number[];
  name: string | undefined;
}

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) fs.closeSync(fd);
}

function outside(root: string, lcPath: string, why: string): UnderstudyError {
  return new UnderstudyError('PATH_OUTSIDE_ROOT', `"${lcPath}" in ${root}: ${why}`, {
    details: { root, path: lcPath },
  });
}

/**
 * Walks `lcPath` inside `root`. Symlinks in the middle are followed inside the root; the last component is
 * followed when `followLast` is set. Missing directories are created (0755) when `createDirs` is set.
 * The caller owns the returned fds (closeAll).
 */
function walk(root: string, lcPath: string, options: { followLast: boolean; createDirs: boolean }): Resolved {
  if (!lcPath.startsWith('/')) throw outside(root, lcPath, 'not an absolute path');
  if (lcPath.includes('\0')) throw outside(root, lcPath, 'contains a NUL byte');
  const stack = [fs.openSync(root, O_PATH | O_DIRECTORY)];
  try {
    const parts = lcPath.split('/').filter((p) => p && p !== '.');
    let links = 0;
    let name: string | undefined;
    while (parts.length > 0) {
      const part = parts.shift() as string;
      const isLast = parts.length === 0;
      name = undefined;
      if (part === '..') {
        if (stack.length > 1) fs.closeSync(stack.pop() as number);
        continue;
      }
      const top = stack[stack.length - 1] as number;
      let fd: number;
      try {
        fd = fs.openSync(at(top, part), O_PATH | O_NOFOLLOW);
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
        if (isLast) {
          name = part;
          break;
        }
        if (!options.createDirs) throw error;
        try {
          fs.mkdirSync(at(top, part), { mode: 0o755 });
        } catch (mkdirError) {
          // Created meanwhile (possibly as a symlink): the retry sees what is there now.
          if (!isErrno(mkdirError, 'EEXIST')) throw mkdirError;
        }
        parts.unshift(part);
        continue;
      }
      const stat = fs.fstatSync(fd);
      if (stat.isSymbolicLink() && (!isLast || options.followLast)) {
        fs.closeSync(fd);
        if (++links > MAX_SYMLINKS) throw outside(root, lcPath, 'too many levels of symbolic links');
        const target = fs.readlinkSync(at(top, part));
        if (target.startsWith('/')) closeAll(stack.splice(1));
        parts.unshift(...target.split('/').filter((p) => p && p !== '.'));
        continue;
      }
      if (isLast) {
        fs.closeSync(fd);
        name = part;
        break;
      }
      if (!stat.isDirectory()) {
        fs.closeSync(fd);
        throw unsafe(root, lcPath, `goes through "${part}", which is not a directory`);
      }
      stack.push(fd);
    }
    return { stack, name };
  } catch (error) {
    closeAll(stack);
    throw error;
  }
}

function unsafe(root: string, lcPath: string, why: string): UnderstudyError {
  return new UnderstudyError('LC_FILE_UNSAFE', `"${lcPath}" in ${root} ${why}`, {
    details: { root, path: lcPath },
  });
}

export interface WriteInRootOptions {
  /** File mode of the new file (default 0644). */
  mode?: number;
  /** Create missing parent directories (default true). */
  createDirs?: boolean;
}

/**
 * Replaces the file at `lcPath` inside `root` atomically: a fresh temp file (O_EXCL, never a link) in the
 * same directory, fsynced, renamed over the target. A symlink at the target is followed inside the root.
 */
export function writeFileInRoot(
  root: string,
  lcPath: string,
  data: string | Buffer,
  options: WriteInRootOptions = {},
): void {
  const mode = options.mode ?? 0o644;
  const { stack, name } = walk(root, lcPath, { followLast: true, createDirs: options.createDirs ?? true });
  try {
    if (name === undefined) throw unsafe(root, lcPath, 'is a directory');
    const dir = stack[stack.length - 1] as number;
    const temp = `.understudy-${process.pid}-${crypto.randomBytes(6).toString('hex')}.tmp`;
    const fd = fs.openSync(at(dir, temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    try {
      try {
        fs.writeFileSync(fd, data);
        fs.fchmodSync(fd, mode);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(at(dir, temp), at(dir, name));
    } catch (error) {
      fs.rmSync(at(dir, temp), { force: true });
      throw error;
    }
  } finally {
    closeAll(stack);
  }
}

export interface ReadInRootOptions {
  /** Refuse files larger than this (default 64 MiB). */
  maxBytes?: number;
  /** Follow a symlink at the last component, inside the root (default true). */
  followLast?: boolean;
}

/**
 * Opens the regular file at `lcPath` inside `root` for reading and hands its fd to `use`. Throws
 * LC_FILE_UNSAFE for anything else (FIFO, device, socket, directory, a symlink when `followLast` is
 * false) or a file over `maxBytes`; ENOENT when it does not exist.
 */
function withFileInRoot<T>(
  root: string,
  lcPath: string,
  options: ReadInRootOptions,
  use: (fd: number, maxBytes: number, tooBig: () => Error) => T,
): T {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_READ_BYTES;
  const { stack, name } = walk(root, lcPath, { followLast: options.followLast ?? true, createDirs: false });
  try {
    if (name === undefined) throw unsafe(root, lcPath, 'is a directory');
    const dir = stack[stack.length - 1] as number;
    const handle = fs.openSync(at(dir, name), O_PATH | O_NOFOLLOW);
    try {
      const stat = fs.fstatSync(handle);
      if (!stat.isFile()) throw unsafe(root, lcPath, 'is not a regular file');
      if (stat.size > maxBytes) throw unsafe(root, lcPath, `is larger than ${maxBytes} bytes`);
      // Re-opening the O_PATH handle opens exactly the inode checked above.
      const fd = fs.openSync(self(handle), O_RDONLY | O_NONBLOCK);
      try {
        return use(fd, maxBytes, () => unsafe(root, lcPath, `is larger than ${maxBytes} bytes`));
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.closeSync(handle);
    }
  } finally {
    closeAll(stack);
  }
}

/**
 * Reads the regular file at `lcPath` inside `root`. Throws LC_FILE_UNSAFE for anything else (FIFO,
 * device, socket, directory, a symlink when `followLast` is false) or a file over `maxBytes`; ENOENT
 * when it does not exist.
 */
export function readFileInRoot(root: string, lcPath: string, options: ReadInRootOptions = {}): Buffer {
  return withFileInRoot(root, lcPath, options, readBounded);
}

/**
 * The hex digest (`algorithm`, e.g. sha256) of the regular file at `lcPath` inside `root`, read in
 * chunks (no size cap unless `maxBytes` is given). Same refusals as readFileInRoot.
 */
export function hashFileInRoot(
  root: string,
  lcPath: string,
  algorithm: string,
  options: ReadInRootOptions = {},
): string {
  return withFileInRoot(
    root,
    lcPath,
    { maxBytes: Number.MAX_SAFE_INTEGER, ...options },
    (fd, maxBytes, tooBig) => {
      const hash = crypto.createHash(algorithm);
      const chunk = Buffer.alloc(1024 * 1024);
      let total = 0;
      for (;;) {
        const n = fs.readSync(fd, chunk, 0, chunk.length, null);
        if (n === 0) break;
        total += n;
        if (total > maxBytes) throw tooBig();
        hash.update(chunk.subarray(0, n));
      }
      return hash.digest('hex');
    },
  );
}

/** Reads fd to its end, throwing tooBig() as soon as more than maxBytes came (the file may grow while read). */
function readBounded(fd: number, maxBytes: number, tooBig: () => Error): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    total += n;
    if (total > maxBytes) throw tooBig();
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
  return Buffer.concat(chunks, total);
}

/** Names in the directory at `lcPath` inside `root` (symlinks followed inside the root); [] when it does not exist. */
export function listDirInRoot(root: string, lcPath: string): string[] {
  let resolved: Resolved;
  try {
    resolved = walk(root, lcPath, { followLast: true, createDirs: false });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const { stack, name } = resolved;
  try {
    const dir = stack[stack.length - 1] as number;
    if (name === undefined) return fs.readdirSync(self(dir));
    let handle: number;
    try {
      handle = fs.openSync(at(dir, name), O_PATH | O_NOFOLLOW | O_DIRECTORY);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      if (isErrno(error, 'ENOTDIR') || isErrno(error, 'ELOOP'))
        throw unsafe(root, lcPath, 'is not a directory');
      throw error;
    }
    try {
      return fs.readdirSync(self(handle));
    } finally {
      fs.closeSync(handle);
    }
  } finally {
    closeAll(stack);
  }
}

/** Removes the entry at `lcPath` inside `root` (a symlink itself, never its target); no error when absent. */
export function removeInRoot(root: string, lcPath: string): void {
  let resolved: Resolved;
  try {
    resolved = walk(root, lcPath, { followLast: false, createDirs: false });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  const { stack, name } = resolved;
  try {
    if (name === undefined) throw unsafe(root, lcPath, 'is a directory');
    try {
      fs.unlinkSync(at(stack[stack.length - 1] as number, name));
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
  } finally {
    closeAll(stack);
  }
}
