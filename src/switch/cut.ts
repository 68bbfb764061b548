/**
 * The cut of a stateful switch, asked of the service: its writes in flight, quiesce, hold, release
 * (see `CutAction`). A side may bring its own `cutControl`; otherwise the service is asked over HTTP on
 * loopback at its port from inside the LC's network namespace (the demo service's protocol).
 */
import { PassThrough } from 'node:stream';
import { UnderstudyError, sleep, type ExecResult, type Logger } from '../core/index.ts';
import type { CutAction, CutPolicy, ServiceWriteState, SwitchSide } from './types.ts';

/** The path prefix of the HTTP cut protocol. */
export const cutPathPrefix = '/.understudy';
/** The word that ends an armed request's body when its action is due; a body that ends without it is not acted on. */
const armedWord = 'fire';

function asWriteState(value: unknown): ServiceWriteState | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Partial<ServiceWriteState>;
  if (typeof v.writesInFlight !== 'number' || typeof v.quiesced !== 'boolean') return undefined;
  return { oldestWriteMs: 0, held: false, ...v } as ServiceWriteState;
}

/** Asks `side`'s service for a cut action; throws SWITCH_STEP_FAILED when it does not answer the protocol. */
export async function cutControl(
  side: SwitchSide,
  action: CutAction,
  options: { port: number; waitMs?: number; forwardTo?: string },
): Promise<ServiceWriteState> {
  if (side.cutControl) return side.cutControl(action, options);
  const request = cutRequest(action, options, false);
  return parseAnswer(side, action, request.url, await side.netExec(request.argv, request.execOptions));
}

function cutRequest(
  action: CutAction,
  options: { port: number; waitMs?: number; armedForMs?: number; forwardTo?: string },
  armed: boolean,
): { url: string; argv: string[]; execOptions: { okCodes: number[]; timeoutMs: number } } {
  const query = new URLSearchParams();
  if (options.waitMs !== undefined) query.set('waitMs', String(Math.round(options.waitMs)));
  if (options.forwardTo !== undefined) query.set('forwardTo', options.forwardTo);
  if (armed) query.set('armed', '1');
  const url = `http://127.0.0.1:${options.port}${cutPathPrefix}/${action}${query.size > 0 ? `?${query.toString()}` : ''}`;
  const maxSeconds = ((options.waitMs ?? 0) + (options.armedForMs ?? 0) + 5000) / 1000;
  // Armed: the body comes from stdin, chunked, and ends when the action is due (no 100-continue wait).
  const body = armed ? ['-H', 'Expect:', '-H', 'Content-Type: application/octet-stream', '-T', '-'] : [];
  return {
    url,
    argv: [
      'curl',
      '-sS',
      '-X',
      action === 'writes' ? 'GET' : 'POST',
      ...body,
      '--max-time',
      maxSeconds.toFixed(3),
      '-w',
      '\n%{http_code}',
      url,
    ],
    execOptions: { okCodes: [0, 7, 28, 52, 56], timeoutMs: maxSeconds * 1000 + 2000 },
  };
}

function parseAnswer(side: SwitchSide, action: CutAction, url: string, r: ExecResult): ServiceWriteState {
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  let state: ServiceWriteState | undefined;
  try {
    state = asWriteState(JSON.parse(lines.join('\n')));
  } catch {
    state = undefined;
  }
  if (r.exitCode !== 0 || status !== 200 || !state) {
    throw new UnderstudyError(
      'SWITCH_STEP_FAILED',
      `The service on ${side.name} did not answer the cut action ${action} (${url}: ${r.exitCode !== 0 ? `curl exit ${String(r.exitCode)}` : `HTTP ${status}`})`,
      {
        hint: 'A service that does not offer the cut protocol is switched with the connection drain (cut: connections).',
        details: { lc: side.name, action, status, exitCode: r.exitCode },
      },
    );
  }
  return state;
}

/** A cut action sent ahead of time; `fire` lets the service take it now, `cancel` withdraws it. */
export interface ArmedCut {
  fire(): Promise<ServiceWriteState>;
  cancel(): void;
}

/**
 * Sends the request for `action` now, with a body that ends only on `fire()`: the service takes the
 * action the moment the body ends, so the action costs no process start or connection when it is due
 * (the hold of a stateful switch is made of such moments). `cancel()` kills the request: the service
 * never takes the action. A side with its own `cutControl` is simply asked on `fire()`. When the armed
 * request fails, `fire()` asks again the plain way.
 */
export function armCut(
  side: SwitchSide,
  action: 'quiesce' | 'release',
  options: { port: number; waitMs?: number; armedForMs: number; forwardTo?: string },
): ArmedCut {
  if (side.cutControl) {
    return { fire: () => cutControl(side, action, options), cancel: () => undefined };
  }
  const body = new PassThrough();
  const abort = new AbortController();
  const request = cutRequest(action, options, true);
  const answer = side
    .netExec(request.argv, { ...request.execOptions, input: body, signal: abort.signal })
    .then((r) => parseAnswer(side, action, request.url, r));
  // An armed request that is cancelled or fails is never awaited by anyone but fire().
  answer.catch(() => undefined);
  let fired = false;
  return {
    async fire() {
      fired = true;
      // Only this word makes the service act: should the manager die, curl ends the body without it.
      body.end(armedWord);
      try {
        return await answer;
      } catch {
        return cutControl(side, action, options);
      }
    },
    cancel() {
      if (fired) return;
      abort.abort();
      body.destroy();
    },
  };
}

/** What the check before the switch found. */
export interface GateOutcome {
  /** The cut the switch will make: `connections` when LC1's service does not offer the protocol. */
  cut: 'writes' | 'connections';
  gateMs: number;
  /** Times slow writes were found (and waited for, under `wait`). */
  retries: number;
  /** `proceed` chosen with slow writes in flight: the hold will last as long as they do. */
  proceededWithSlowWrites: boolean;
}

/**
 * Before any traffic moves: asks LC1's service for its writes in flight. A write in flight for at
 * least maxHoldMs / 2 (a body still arriving slowly) would hold new requests longer than the budget;
 * the policy then waits for a quieter moment (bounded), proceeds, or stops the switch with
 * SWITCH_WRITES_TOO_SLOW. Nothing is changed here.
 */
export async function cutGate(
  from: SwitchSide,
  port: number,
  policy: CutPolicy,
  logger: Logger,
  note: (message: string, detail: Record<string, number | string>) => void,
): Promise<GateOutcome> {
  const started = Date.now();
  if (policy.kind === 'connections')
    return { cut: 'connections', gateMs: 0, retries: 0, proceededWithSlowWrites: false };
  let retries = 0;
  for (;;) {
    let state: ServiceWriteState;
    try {
      state = await cutControl(from, 'writes', { port });
    } catch (error) {
      logger.warn(
        { lc: from.name, err: error },
        'the service does not offer the cut protocol; the cut waits for its connections',
      );
      note(`${from.name}'s service does not report its writes: the cut waits for its connections`, {
        cut: 'connections',
      });
      return { cut: 'connections', gateMs: Date.now() - started, retries, proceededWithSlowWrites: false };
    }
    const slow = state.writesInFlight > 0 && state.oldestWriteMs >= policy.maxHoldMs / 2;
    if (!slow)
      return { cut: 'writes', gateMs: Date.now() - started, retries, proceededWithSlowWrites: false };
    const what = `${from.name} has ${state.writesInFlight} write(s) in flight, the oldest for ${state.oldestWriteMs} ms: the hold would exceed maxHoldMs (${policy.maxHoldMs} ms)`;
    if (policy.onSlowWrites === 'proceed') {
      logger.warn({ lc: from.name, ...state }, 'slow writes in flight; proceeding as chosen');
      note(`${what}; proceeding as chosen (the hold lasts as long as they do)`, {
        writesInFlight: state.writesInFlight,
        oldestWriteMs: state.oldestWriteMs,
      });
      return { cut: 'writes', gateMs: Date.now() - started, retries, proceededWithSlowWrites: true };
    }
    if (policy.onSlowWrites === 'abort' || retries >= policy.retries) {
      throw new UnderstudyError(
        'SWITCH_WRITES_TOO_SLOW',
        `${what}${retries > 0 ? ` (still after ${retries} waits of ${policy.retryIntervalMs} ms)` : ''}; the service stays on ${from.name}, nothing was changed`,
        {
          hint: 'Switch at a quieter moment, raise maxHoldMs, or choose to proceed (onSlowWrites: proceed).',
          details: { lc: from.name, ...state, retries, maxHoldMs: policy.maxHoldMs },
        },
      );
    }
    retries += 1;
    note(
      `${what}; waiting ${policy.retryIntervalMs} ms for a quieter moment (${retries}/${policy.retries})`,
      {
        writesInFlight: state.writesInFlight,
        oldestWriteMs: state.oldestWriteMs,
        retry: retries,
      },
    );
    await sleep(policy.retryIntervalMs);
  }
}
