/**
 * The open-loop load run. Request i is due at start + i/rate no matter how fast answers come, and its
 * latency counts from that due time (no coordinated omission: a stall shows as latency of every request
 * that was due during it, including time spent waiting for a pooled connection). The run is bounded by
 * both a duration and a request count and stops by itself. Failed requests are never retried.
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExchangeError, HttpConnection, type OutgoingRequest, type Target } from './connection.ts';
import { resolveLoadOptions } from './options.ts';
import { ConnectionPool } from './pool.ts';
import type { ParsedResponse } from './response-parser.ts';
import { summarize } from './summary.ts';
import type {
  AckedWrite,
  LoadHandle,
  LoadOptions,
  LoadResult,
  Mark,
  RequestKind,
  RequestRecord,
  ResolvedLoadOptions,
} from './types.ts';

/** Starts a load run now. Throws UnderstudyError INVALID_ARGUMENT for bad options. */
export function startLoad(options: LoadOptions): LoadHandle {
  const run = new LoadRun(resolveLoadOptions(options));
  run.start();
  return { done: run.done, stop: () => run.stop(), mark: (label) => run.mark(label) };
}

/** Picks kinds in exact proportion to the mix, spread evenly (smooth weighted round-robin). */
function createKindPicker(mix: ResolvedLoadOptions['mix']): () => RequestKind {
  const weights: Array<[RequestKind, number]> = (
    [
      ['new-conn', mix.newconn],
      ['keepalive', mix.keepalive],
      ['upload', mix.upload],
      ['write', mix.write],
    ] as Array<[RequestKind, number]>
  ).filter(([, weight]) => weight > 0);
  const credit = weights.map(() => 0);
  return () => {
    let best = 0;
    for (let i = 0; i < weights.length; i += 1) {
      credit[i] = (credit[i] ?? 0) + (weights[i]?.[1] ?? 0);
      if ((credit[i] ?? 0) > (credit[best] ?? 0)) best = i;
    }
    credit[best] = (credit[best] ?? 0) - 1;
    return weights[best]?.[0] ?? 'keepalive';
  };
}

interface Exchanged {
  response: ParsedResponse;
  reused: boolean;
  /** Times the request was sent again after a reused connection closed before answering. */
  resent: number;
}

/**
 * How often a request is sent again when a reused keep-alive connection ends before one byte of the
 * answer arrived. That is the race of a server closing an idle connection while the request is on its
 * way; HTTP clients (browsers, Go's net/http, curl) resend an idempotent request then (RFC 9110
 * §9.2.2). Every request this generator sends over the pool (GET, PUT) is idempotent. A connection
 * that was new, or that answered partly, is never resent: that is a failure. A `503` with a short
 * `Retry-After` (see retryNow) is sent again too, after that delay, within the same bound.
 */
const maxResends = 5;

/**
 * A `503` with `Retry-After` of at most `maxRetryAfterS` seconds: the server says it did not apply the
 * request and asks for it again (a service handing over to another server answers a write it may no
 * longer apply so). The delay to wait in ms; undefined for any other answer (an HTTP date in
 * Retry-After, or a longer delay, is the server's refusal and counted as such).
 */
function retryNow(response: ParsedResponse): number | undefined {
  if (response.status !== 503) return undefined;
  const value = response.headers['retry-after'];
  if (value === undefined || !/^\d+$/.test(value) || Number(value) > maxRetryAfterS) return undefined;
  return Number(value) * 1000;
}

const maxRetryAfterS = 1;

const timeoutError = (): ExchangeError =>
  new ExchangeError('timeout', 'TIMEOUT', 'no complete response within the request timeout');

class LoadRun {
  readonly done: Promise<LoadResult>;
  private resolveDone!: (result: LoadResult) => void;
  private readonly target: Target;
  private readonly pool: ConnectionPool;
  private readonly intervalMs: number;
  private readonly total: number;
  private readonly pickKind: () => RequestKind;
  private readonly runTag = randomBytes(3).toString('hex');
  /**
   * Date.now() − performance.now(), fixed at start: turns the monotonic clock into epoch ms. The
   * largest of a few readings: a process preempted between the two reads (a loaded machine) gets one
   * too small, which would date every record early by the length of the preemption (tens of ms).
   */
  private readonly epochOffset = Math.max(
    ...Array.from({ length: 16 }, () => Date.now() - performance.now()),
  );
  private readonly uploadChunks: Buffer[];
  private readonly uploadSha256: string;
  private startMono = 0;
  private lastDispatchMono = 0;
  private next = 0;
  private inFlight = 0;
  private schedulingEnded = false;
  private finished = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private newConnections = 0;
  private readonly records: RequestRecord[] = [];
  private readonly marks: Mark[] = [];
  private readonly acked: AckedWrite[] = [];

  constructor(private readonly options: ResolvedLoadOptions) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    this.target = { host: options.host, port: options.port };
    this.pool = new ConnectionPool({
      target: this.target,
      size: options.poolSize,
      idleTimeoutMs: options.idleTimeoutMs,
    });
    this.intervalMs = 1000 / options.rate;
    this.total = Math.min(options.maxRequests, Math.ceil(options.durationMs / this.intervalMs));
    this.pickKind = createKindPicker(options.mix);
    const payload = randomBytes(options.uploadBytes);
    this.uploadSha256 = createHash('sha256').update(payload).digest('hex');
    const size = Math.ceil(options.uploadBytes / options.uploadChunks);
    this.uploadChunks = [];
    for (let offset = 0; offset < payload.length; offset += size)
      this.uploadChunks.push(payload.subarray(offset, offset + size));
  }

  start(): void {
    this.startMono = performance.now();
    this.tick();
  }

  stop(): Promise<LoadResult> {
    this.endScheduling();
    return this.done;
  }

  mark(label: string): Mark {
    const mark = { label, at: this.epoch(performance.now()) };
    this.marks.push(mark);
    return mark;
  }

  private epoch(mono: number): number {
    return this.epochOffset + mono;
  }

  /** Dispatches every request that is due, then sleeps until the next one is. */
  private tick(): void {
    this.tickTimer = undefined;
    if (this.schedulingEnded) return;
    const now = performance.now();
    while (this.next < this.total) {
      const due = this.startMono + this.next * this.intervalMs;
      if (due > now) break;
      this.dispatch(this.next, due, now);
      this.next += 1;
    }
    if (this.next >= this.total) {
      this.endScheduling();
      return;
    }
    const wait = this.startMono + this.next * this.intervalMs - performance.now();
    this.tickTimer = setTimeout(() => this.tick(), Math.max(0, wait));
  }

  private endScheduling(): void {
    if (this.schedulingEnded) return;
    this.schedulingEnded = true;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.maybeFinish();
  }

  private dispatch(seq: number, dueMono: number, nowMono: number): void {
    const kind = this.pickKind();
    this.inFlight += 1;
    this.lastDispatchMono = nowMono;
    void this.runOne({ seq, kind, dueMono, lagMs: nowMono - dueMono }).then((record) => {
      this.records.push(record);
      this.inFlight -= 1;
      this.maybeFinish();
    });
  }

  private maybeFinish(): void {
    if (!this.schedulingEnded || this.inFlight > 0 || this.finished) return;
    this.finished = true;
    this.pool.closeAll();
    const records = this.records.sort((a, b) => a.seq - b.seq);
    const spanMs = records.length > 0 ? this.lastDispatchMono - this.startMono + this.intervalMs : 0;
    this.resolveDone({
      options: this.options,
      startedAt: this.epoch(this.startMono),
      endedAt: this.epoch(performance.now()),
      records,
      marks: this.marks,
      ackedWrites: this.acked,
      summary: summarize({
        records,
        durationMs: spanMs,
        uploadDurationMs: this.options.uploadDurationMs,
        connectionsOpened: this.pool.opened + this.newConnections,
        ackedWrites: this.acked.length,
      }),
    });
  }

  /** Runs one request to its end; never rejects: every way it can end is a record. */
  private runOne(request: {
    seq: number;
    kind: RequestKind;
    dueMono: number;
    lagMs: number;
  }): Promise<RequestRecord> {
    const { seq, kind, dueMono, lagMs } = request;
    const base = { seq, kind, scheduledAt: this.epoch(dueMono), lagMs: Math.round(lagMs * 1000) / 1000 };
    const write =
      kind === 'write' ? { key: `lg-${this.runTag}-${seq}`, value: `v-${this.runTag}-${seq}` } : undefined;
    return new Promise<RequestRecord>((resolve) => {
      let settled = false;
      let abort: (() => void) | undefined;
      const finish = (
        fields: Omit<RequestRecord, 'seq' | 'kind' | 'scheduledAt' | 'lagMs' | 'latencyMs'>,
      ): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const latencyMs = Math.round((performance.now() - dueMono) * 1000) / 1000;
        resolve({ ...base, latencyMs, ...fields });
      };
      const budget = this.options.timeoutMs + (kind === 'upload' ? this.options.uploadDurationMs : 0);
      const timer = setTimeout(() => {
        const cancel = abort;
        finish({ outcome: 'timeout', errorCode: 'TIMEOUT' });
        cancel?.();
      }, budget);
      const control = { setAbort: (fn: () => void) => (abort = fn), isSettled: () => settled };
      this.perform(kind, write, control).then(
        (exchanged) => finish(this.classify(kind, exchanged, write)),
        (error: unknown) => {
          const failure =
            error instanceof ExchangeError ? error : new ExchangeError('reset', 'EINTERNAL', String(error));
          finish({
            outcome: failure.outcome,
            errorCode: failure.code,
            ...(failure.reused ? { reused: true } : {}),
            ...(failure.resent > 0 ? { resent: failure.resent } : {}),
          });
        },
      );
    });
  }

  private buildRequest(
    kind: RequestKind,
    write: { key: string; value: string } | undefined,
  ): OutgoingRequest {
    const o = this.options;
    const common = `Host: ${o.hostHeader}\r\nUser-Agent: understudy-loadgen\r\n`;
    switch (kind) {
      case 'new-conn':
        return { head: Buffer.from(`GET ${o.path} HTTP/1.1\r\n${common}Connection: close\r\n\r\n`) };
      case 'keepalive':
        return { head: Buffer.from(`GET ${o.path} HTTP/1.1\r\n${common}\r\n`) };
      case 'upload':
        return {
          head: Buffer.from(
            `POST ${o.uploadPath} HTTP/1.1\r\n${common}Content-Type: application/octet-stream\r\nContent-Length: ${o.uploadBytes}\r\nConnection: close\r\n\r\n`,
          ),
          pacedBody: {
            chunks: this.uploadChunks,
            intervalMs: o.uploadDurationMs / Math.max(1, this.uploadChunks.length - 1),
          },
        };
      case 'write': {
        const body = Buffer.from(write?.value ?? '');
        const path = `${o.writePathPrefix}${encodeURIComponent(write?.key ?? '')}`;
        return {
          head: Buffer.from(
            `PUT ${path} HTTP/1.1\r\n${common}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`,
          ),
          body,
        };
      }
    }
  }

  private async perform(
    kind: RequestKind,
    write: { key: string; value: string } | undefined,
    control: { setAbort: (fn: () => void) => void; isSettled: () => boolean },
  ): Promise<Exchanged> {
    const request = this.buildRequest(kind, write);
    if (kind === 'new-conn' || kind === 'upload') {
      const connection = new HttpConnection(this.target);
      this.newConnections += 1;
      control.setAbort(() => connection.destroy(timeoutError()));
      try {
        return { response: await connection.exchange(request), reused: false, resent: 0 };
      } catch (error) {
        connection.destroy();
        throw error;
      } finally {
        connection.close();
      }
    }
    let resent = 0;
    for (;;) {
      const lease = this.pool.acquire();
      control.setAbort(lease.cancel);
      const connection = await lease.connection;
      if (control.isSettled()) {
        this.pool.release(connection);
        throw timeoutError();
      }
      if (!connection.usable) {
        // The server closed it before we wrote anything: send on another connection (not a retry).
        this.pool.release(connection);
        continue;
      }
      const reused = connection.completed > 0;
      control.setAbort(() => connection.destroy(timeoutError()));
      let retryAfterMs: number | undefined;
      try {
        const response = await connection.exchange(request);
        retryAfterMs = retryNow(response);
        if (retryAfterMs === undefined || resent >= maxResends || control.isSettled())
          return { response, reused, resent };
        resent += 1;
      } catch (error) {
        const unanswered =
          error instanceof ExchangeError && error.nothingReceived && error.outcome === 'reset';
        if (!reused || !unanswered || resent >= maxResends || control.isSettled()) {
          if (error instanceof ExchangeError) Object.assign(error, { reused, resent });
          throw error;
        }
        resent += 1;
      } finally {
        this.pool.release(connection);
      }
      if (retryAfterMs) await sleep(retryAfterMs);
    }
  }

  private classify(
    kind: RequestKind,
    exchanged: Exchanged,
    write: { key: string; value: string } | undefined,
  ): Omit<RequestRecord, 'seq' | 'kind' | 'scheduledAt' | 'lagMs' | 'latencyMs'> {
    const { response, reused, resent } = exchanged;
    const fields = {
      status: response.status,
      servedBy: response.headers['x-served-by'],
      version: response.headers['x-version'],
      reused,
      ...(resent > 0 ? { resent } : {}),
    };
    if (response.status >= this.options.errorStatusFrom)
      return { ...fields, outcome: 'http-error', errorCode: `HTTP_${response.status}` };
    if (
      kind === 'upload' &&
      this.options.verifyUploads &&
      response.status < 300 &&
      !this.uploadEchoMatches(response)
    ) {
      return { ...fields, outcome: 'http-error', errorCode: 'UPLOAD_MISMATCH' };
    }
    if (write && response.status >= 200 && response.status < 300) {
      this.acked.push({
        key: write.key,
        value: write.value,
        path: `${this.options.writePathPrefix}${encodeURIComponent(write.key)}`,
      });
    }
    return { ...fields, outcome: 'ok' };
  }

  /** An answer that echoes {bytes, sha256} must match what was sent; other answers are not judged. */
  private uploadEchoMatches(response: ParsedResponse): boolean {
    let echo: unknown;
    try {
      echo = JSON.parse(response.body.toString('utf8'));
    } catch {
      return true;
    }
    if (typeof echo !== 'object' || echo === null || !('sha256' in echo) || !('bytes' in echo)) return true;
    return echo.bytes === this.options.uploadBytes && echo.sha256 === this.uploadSha256;
  }
}
