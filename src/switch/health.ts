/** The health check (HTTP path + expected status via curl, or a TCP connect), run in an LC's network namespace. */
import { sleep } from '../core/index.ts';
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
}

async function attempt(
  side: SwitchSide,
  check: HealthCheck,
  host: string,
  port: number,
): Promise<{ ok: boolean; detail: string }> {
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
  };
}

/** Runs the check from inside `side` against host:port, with retries; never throws for a failed check. */
export async function checkHealth(
  side: SwitchSide,
  check: HealthCheck,
  host: string,
  port: number,
): Promise<HealthOutcome> {
  let last = { ok: false, detail: 'not run' };
  for (let i = 0; i <= check.retries; i++) {
    if (i > 0) await sleep(check.intervalMs);
    last = await attempt(side, check, host, port);
    if (last.ok) return { ...last, attempts: i + 1 };
  }
  return { ...last, attempts: check.retries + 1 };
}
