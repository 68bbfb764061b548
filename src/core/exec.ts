/**
 * The one way understudy runs an external program: an argv array (never a shell string), a timeout
 * and an AbortSignal, captured output, and a typed failure that names the argv, explains the exit
 * code or signal and shows the tail of stderr. Every child is tracked so that shutdown leaves no orphan.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { Readable } from 'node:stream';
import { UnderstudyError } from './errors.ts';

export interface ExecOptions {
  /** Kill the command after this many milliseconds (default 120 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Written to the command's stdin, then stdin is closed (a stream: piped, closed when it ends). */
  input?: string | Buffer | Readable;
  cwd?: string;
  /** Added to (not replacing) the environment. */
  env?: Record<string, string>;
  /** Exit codes that count as success (default [0]). */
  okCodes?: readonly number[];
  /** Stop keeping stdout/stderr beyond this many bytes each (default 16 MiB). */
  maxBuffer?: number;
  /** Called with each complete line of stdout as it arrives (a long command's own progress). */
  onStdoutLine?: (line: string) => void;
}

export interface ExecResult {
  argv: readonly string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Debian packages that provide the programs understudy runs, for a useful "not installed" error. */
const packageOf: Record<string, string> = {
  btrfs: 'btrfs-progs',
  'mkfs.btrfs': 'btrfs-progs',
  ip: 'iproute2',
  bridge: 'iproute2',
  nsenter: 'util-linux',
  unshare: 'util-linux',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
  nft: 'nftables',
  arping: 'iputils-arping',
  busybox: 'busybox-static',
  debootstrap: 'debootstrap',
  clamscan: 'clamav',
  keepalived: 'keepalived',
  gpgv: 'gpgv',
  gpg: 'gnupg',
  'dpkg-deb': 'dpkg',
  'apt-ftparchive': 'apt-utils',
  patch: 'patch',
  rsync: 'rsync',
  tar: 'tar',
  getfattr: 'attr',
  setfattr: 'attr',
  curl: 'curl',
  findmnt: 'util-linux',
  'lxc-start': 'lxc',
  'lxc-stop': 'lxc',
  'lxc-info': 'lxc',
  'lxc-attach': 'lxc',
  'lxc-freeze': 'lxc',
  'lxc-unfreeze': 'lxc',
  'lxc-cgroup': 'lxc',
  newuidmap: 'uidmap',
};

export function debianPackageFor(program: string): string | undefined {
  return packageOf[program.split('/').pop() ?? program];
}

const tracked = new Set<ChildProcess>();

/** What an observer of external commands is told when one ends. */
export interface ExecRecord {
  argv: readonly string[];
  /** performance.now() when it was started. */
  startedAt: number;
  durationMs: number;
  exitCode: number | null;
}

const observers = new Set<(record: ExecRecord) => void>();

/**
 * Calls `listener` each time an external command (exec or spawnProcess) ends, e.g. to count and time
 * the commands of one operation (the benchmarks' profile). Returns the function that stops it.
 */
export function observeExec(listener: (record: ExecRecord) => void): () => void {
  observers.add(listener);
  return () => observers.delete(listener);
}

function notifyObservers(result: ExecResult, started: number): void {
  for (const listener of observers)
    listener({
      argv: result.argv,
      startedAt: started,
      durationMs: result.durationMs,
      exitCode: result.exitCode,
    });
}

/** Children still running (for shutdown and for tests that check nothing was left behind). */
export function trackedChildren(): ReadonlySet<ChildProcess> {
  return tracked;
}

/** Ends every tracked child (SIGTERM, then SIGKILL after graceMs). */
export async function killTrackedChildren(graceMs = 2000): Promise<void> {
  const children = [...tracked];
  for (const child of children) child.kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (tracked.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const child of tracked) child.kill('SIGKILL');
}

function describeExit(result: Pick<ExecResult, 'exitCode' | 'signal'>): string {
  if (result.signal) return `was killed by ${result.signal}`;
  if (result.exitCode === 126) return 'exited with 126 (found but not executable)';
  if (result.exitCode === 127) return 'exited with 127 (command not found)';
  return `exited with code ${String(result.exitCode)}`;
}

function tail(text: string, lines = 12): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

function notFound(argv: readonly string[], cause: unknown): UnderstudyError {
  const program = argv[0] ?? '';
  const pkg = debianPackageFor(program);
  return new UnderstudyError(
    'EXEC_NOT_FOUND',
    `${program} is not installed (needed to run: ${formatArgv(argv)})`,
    {
      hint: pkg ? `Install it: apt-get install ${pkg}` : `Install the program ${program}.`,
      cause,
      details: { argv, package: pkg },
    },
  );
}

export function execFailure(result: ExecResult): UnderstudyError {
  const stderr = tail(result.stderr) || tail(result.stdout);
  return new UnderstudyError(
    'EXEC_FAILED',
    `${formatArgv(result.argv)} ${describeExit(result)}${stderr ? `:\n${stderr}` : ''}`,
    {
      details: {
        argv: result.argv,
        exitCode: result.exitCode,
        signal: result.signal,
        stderr: tail(result.stderr, 40),
      },
    },
  );
}

/**
 * Runs argv to completion. Resolves with the result when the exit code is in okCodes; otherwise
 * rejects with EXEC_FAILED, EXEC_TIMEOUT or EXEC_NOT_FOUND.
 */
export function exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const [program, ...args] = argv;
  if (!program) throw new UnderstudyError('INTERNAL', 'exec called with an empty argv');
  const timeoutMs = options.timeoutMs ?? 120_000;
  const maxBuffer = options.maxBuffer ?? 16 * 1024 * 1024;
  const okCodes = options.okCodes ?? [0];
  const started = performance.now();

  return new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ? { ...process.env, ...options.env } : process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
    });
    tracked.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let spawnError: unknown;
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (outBytes < maxBuffer) out.push(chunk);
      outBytes += chunk.length;
      if (!options.onStdoutLine) return;
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onStdoutLine(line);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (errBytes < maxBuffer) err.push(chunk);
      errBytes += chunk.length;
    });
    child.stdin.on('error', () => {
      /* the command may exit without reading its input; its exit code tells the story */
    });
    if (options.input instanceof Readable) options.input.pipe(child.stdin);
    else if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      spawnError = error;
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      tracked.delete(child);
      if (partial && options.onStdoutLine) options.onStdoutLine(partial);
      const result: ExecResult = {
        argv,
        exitCode,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        durationMs: performance.now() - started,
      };
      notifyObservers(result, started);
      if ((spawnError as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
        return reject(notFound(argv, spawnError));
      if (spawnError && (spawnError as Error).name === 'AbortError') {
        return reject(
          new UnderstudyError('EXEC_FAILED', `${formatArgv(argv)} was cancelled`, {
            cause: spawnError,
            hint: 'The operation was cancelled; nothing more to do.',
          }),
        );
      }
      if (timedOut) {
        return reject(
          new UnderstudyError(
            'EXEC_TIMEOUT',
            `${formatArgv(argv)} did not finish within ${timeoutMs} ms and was killed${result.stderr ? `:\n${tail(result.stderr)}` : ''}`,
            {
              details: { argv, timeoutMs },
            },
          ),
        );
      }
      if (exitCode !== null && okCodes.includes(exitCode)) return resolve(result);
      reject(execFailure(result));
    });
  });
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdio?: StdioOptions;
  /** Start in its own session so that it outlives this process (supervisors of LCs). */
  detached?: boolean;
  signal?: AbortSignal;
}

export interface SpawnedProcess {
  child: ChildProcess;
  /** Resolves when the process has exited (never rejects; inspect the result). */
  done: Promise<ExecResult>;
}

/**
 * Starts a long-running command (a pipe end, a supervisor). The caller reads or writes its streams.
 * Detached children are not tracked: they are meant to outlive the manager.
 */
export function spawnProcess(argv: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
  const [program, ...args] = argv;
  if (!program) throw new UnderstudyError('INTERNAL', 'spawnProcess called with an empty argv');
  const started = performance.now();
  const child = spawn(program, args, {
    cwd: options.cwd,
    env: options.env ? { ...process.env, ...options.env } : process.env,
    stdio: options.stdio ?? ['pipe', 'pipe', 'pipe'],
    detached: options.detached ?? false,
    signal: options.signal,
  });
  if (!options.detached) tracked.add(child);
  const errChunks: Buffer[] = [];
  child.stderr?.on('data', (c: Buffer) => {
    errChunks.push(c);
    if (errChunks.length > 256) errChunks.shift();
  });
  const done = new Promise<ExecResult>((resolve) => {
    let resolved = false;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      if (resolved) return;
      resolved = true;
      tracked.delete(child);
      const result: ExecResult = {
        argv,
        exitCode,
        signal,
        stdout: '',
        stderr: Buffer.concat(errChunks).toString('utf8'),
        durationMs: performance.now() - started,
      };
      notifyObservers(result, started);
      resolve(result);
    };
    child.on('error', (error) => {
      errChunks.push(Buffer.from(String(error)));
      finish(127, null);
    });
    child.on('close', finish);
  });
  return { child, done };
}

/** A narrow interface for code that runs commands, so logic can be unit-tested with a fake. */
export interface CommandRunner {
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

export const realRunner: CommandRunner = { exec };
