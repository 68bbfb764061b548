/**
 * The health check: an HTTP path + expected status via curl or a TCP connect, run in an LC's network
 * namespace; or a command run inside the LC.
 */
import { isUnderstudyError, sleep, type ExecResult } from '../core/index.ts';
import type { HealthCheck, SwitchSide } from './types.ts';

export const defaultHealthCheck: HealthCheck = {
  kind: 'http',
  path: '/health',
  expectStatus: 200,
  timeoutMs: 2000,
  retries: 2,
  intervalMs: 200,
};

export interface HealthOutcome {
  ok: boolean;
  /** What the last attempt saw, e.g. "HTTP 503" or "connect failed". */
  detail: string;
  attempts: number;
  /** The HTTP status the last attempt of an `http` check got (absent when none came, or not http). */
  status?: number;
}

/**
 * A health check a switch or a run made, as it is reported (the event stream's `health` events):
 * which LC, when (`phase`: `before` the switch, on the standby; `after` it, at the service address;
 * `standby` after the standby's patch and reboot, step 709; `watch` after a run's switch), the
 * check's kind, what it reached and its outcome.
 */
export interface HealthReport extends HealthOutcome {
  lc: string;
  phase: 'before' | 'after' | 'standby' | 'watch';
  check: HealthCheck['kind'];
  target: string;
  port: number;
}

/** How much of a check command's stdout and stderr is kept (each); the rest is discarded. */
export const commandOutputBytes = 4096;
/** Every exit status is an outcome of the check, not a failure to run it. */
const anyExitStatus = Array.from({ length: 256 }, (_, code) => code);

/** The last line of what a check command printed (stderr first), at most 200 characters. */
function lastLine(r: ExecResult): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? '';
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * Runs the check's argv inside the LC, bounded twice: `timeout` inside the LC ends the command itself
 * (killing the exec on the host would leave it running in the LC), and the exec is killed 2 s later
 * should the LC not answer at all.
 */
async function attemptCommand(
  side: SwitchSide,
  check: Extract<HealthCheck, { kind: 'command' }>,
): Promise<{ ok: boolean; detail: string }> {
  const shown = check.argv.join(' ');
  if (!side.exec) return { ok: false, detail: `${side.name} cannot run "${shown}" inside it (no exec)` };
  const seconds = (check.timeoutMs / 1000).toFixed(3);
  let r: ExecResult;
  try {
    r = await side.exec(['timeout', seconds, ...check.argv], {
      okCodes: anyExitStatus,
      timeoutMs: check.timeoutMs + 2000,
      maxBuffer: commandOutputBytes,
    });
  } catch (error) {
    if (isUnderstudyError(error) && error.code === 'EXEC_TIMEOUT')
      return {
        ok: false,
        detail: `"${shown}" in ${side.name} did not answer within ${check.timeoutMs + 2000} ms`,
      };
    throw error;
  }
  if (r.exitCode === 0) return { ok: true, detail: `"${shown}" exited 0` };
  // coreutils' timeout exits 124 when the time ran out, busybox's 143 (its SIGTERM).
  const timedOut = (r.exitCode === 124 || r.exitCode === 143) && r.durationMs >= check.timeoutMs;
  const said = lastLine(r);
  return {
    ok: false,
    detail: timedOut
      ? `"${shown}" in ${side.name} did not finish within ${check.timeoutMs} ms`
      : `"${shown}" in ${side.name} exited ${String(r.exitCode ?? r.signal)}${said ? `: ${said}` : ''}`,
  };
}

async function attempt(
  side: SwitchSide,
  check: HealthCheck,
  host: string,
  port: number,
): Promise<{ ok: boolean; detail: string; status?: number }> {
  if (check.kind === 'command') return attemptCommand(side, check);
  const seconds = (check.timeoutMs / 1000).toFixed(3);
  if (check.kind === 'tcp') {
    // bash's /dev/tcp opens a plain TCP connection; timeout(1) bounds the connect.
    const r = await side.netExec(
      ['timeout', seconds, 'bash', '-c', 'exec 3<>"/dev/tcp/$1/$2"', 'bash', host, String(port)],
      {
        okCodes: [0, 1, 124],
        timeoutMs: check.timeoutMs + 2000,
      },
    );
    return r.exitCode === 0
      ? { ok: true, detail: 'connected' }
      : { ok: false, detail: `connect to ${host}:${port} failed` };
  }
  const url = `http://${host}:${port}${check.path}`;
  const r = await side.netExec(
    ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', seconds, url],
    {
      okCodes: [0, 7, 28, 52, 56],
      timeoutMs: check.timeoutMs + 2000,
    },
  );
  const status = Number(r.stdout.trim());
  if (r.exitCode !== 0 || !status)
    return { ok: false, detail: `GET ${url} failed (curl exit ${String(r.exitCode)})` };
  return {
    ok: status === check.expectStatus,
    detail: `GET ${url} answered ${status}, expected ${check.expectStatus}`,
    status,
  };
}

/**
 * Runs the check from inside `side` against host:port (a command check runs inside the LC and ignores
 * them), with retries; never throws for a failed check.
 */
export async function checkHealth(
  side: SwitchSide,
  check: HealthCheck,
  host: string,
  port: number,
): Promise<HealthOutcome> {
  let last: { ok: boolean; detail: string; status?: number } = { ok: false, detail: 'not run' };
  for (let i = 0; i <= check.retries; i++) {
    if (i > 0) await sleep(check.intervalMs);
    last = await attempt(side, check, host, port);
    if (last.ok) return { ...last, attempts: i + 1 };
  }
  return { ...last, attempts: check.retries + 1 };
}
