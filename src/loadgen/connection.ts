/**
 * One client TCP connection that carries HTTP/1.1 requests one at a time, and the failure it can end
 * with. The connection knows whether the server has closed it, so a pool never writes a request onto a
 * socket that is already gone (the only case in which sending elsewhere is correct, not a retry).
 */
import { connect, type Socket } from 'node:net';
import { ResponseParser, ResponseParseError, type ParsedResponse } from './response-parser.ts';
import type { Outcome } from './types.ts';

export interface Target {
  host: string;
  port: number;
}

/** The bytes of one request: a head, then an optional body sent at once or paced in chunks. */
export interface OutgoingRequest {
  head: Buffer;
  body?: Buffer;
  /** Sends the chunks in order, the first right after the head, then one every `intervalMs`. */
  pacedBody?: { chunks: readonly Buffer[]; intervalMs: number };
  headRequest?: boolean;
}

/** Why an exchange failed, already classified as the outcome the generator records. */
export class ExchangeError extends Error {
  /** The connection ended before a single byte of the response arrived (set by the connection). */
  nothingReceived = false;
  /** The request went on a reused keep-alive connection (set by the generator). */
  reused = false;
  /** Times it had been sent again before this failure (set by the generator). */
  resent = 0;

  constructor(
    readonly outcome: Exclude<Outcome, 'ok'>,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const refusedCodes = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EADDRNOTAVAIL']);

/** Maps a socket error to an outcome: refusals, timeouts, and everything else as a reset. */
export function classifySocketError(error: NodeJS.ErrnoException | undefined): ExchangeError {
  const code = error?.code ?? 'HANGUP';
  if (error instanceof ResponseParseError) return new ExchangeError('http-error', 'EPROTO', error.message);
  if (refusedCodes.has(code)) return new ExchangeError('refused', code, error?.message ?? code);
  if (code === 'ETIMEDOUT') return new ExchangeError('timeout', code, error?.message ?? code);
  return new ExchangeError(
    'reset',
    code,
    error?.message ?? 'socket hang up: closed before a complete response',
  );
}

interface PendingExchange {
  parser: ResponseParser;
  /** Response bytes received so far. */
  received: number;
  resolve: (response: ParsedResponse) => void;
  reject: (error: ExchangeError) => void;
  pacer?: NodeJS.Timeout;
}

export class HttpConnection {
  readonly socket: Socket;
  /** Requests completed on this connection (so the next one is a reuse when > 0). */
  completed = 0;
  /** The server ended the connection, or it closed or failed: nothing more may be written to it. */
  closed = false;
  /** The last response said `Connection: close` (or was framed by the close). */
  closeAfter = false;
  private connected = false;
  private pending: PendingExchange | undefined;
  private lastError: NodeJS.ErrnoException | undefined;
  private readonly closeListeners: Array<() => void> = [];

  constructor(target: Target) {
    this.socket = connect({ host: target.host, port: target.port, noDelay: true });
    this.socket.on('connect', () => {
      this.connected = true;
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      this.lastError = error;
    });
    this.socket.on('close', () => this.onClose());
  }

  /** True when a new request may be written now: open, idle, and not told to close. */
  get usable(): boolean {
    return !this.closed && !this.closeAfter && !this.socket.destroyed && this.pending === undefined;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  onClosed(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  /** Writes the request and resolves with the response; rejects with an ExchangeError. */
  exchange(request: OutgoingRequest): Promise<ParsedResponse> {
    if (!this.usable) {
      return Promise.reject(
        new ExchangeError('reset', 'EINTERNAL', 'exchange on a connection that is not usable'),
      );
    }
    return new Promise<ParsedResponse>((resolve, reject) => {
      const parser = new ResponseParser({
        headRequest: request.headRequest ?? false,
        maxBodyBytes: 64 * 1024,
      });
      const pending: PendingExchange = { parser, received: 0, resolve, reject };
      this.pending = pending;
      this.socket.write(request.body ? Buffer.concat([request.head, request.body]) : request.head);
      const paced = request.pacedBody;
      if (paced && paced.chunks.length > 0) {
        let sent = 0;
        const sendChunk = (): void => {
          if (this.pending !== pending || this.socket.destroyed) return;
          const chunk = paced.chunks[sent];
          if (chunk) this.socket.write(chunk);
          sent += 1;
          pending.pacer = sent < paced.chunks.length ? setTimeout(sendChunk, paced.intervalMs) : undefined;
        };
        sendChunk();
      }
    });
  }

  /**
   * Closes politely. When the server announced it closes (`Connection: close`), waits for it to, so
   * TIME_WAIT lands on the server and thousands of short connections cannot exhaust the client's
   * ports; otherwise sends FIN. Either way the socket is destroyed if still open after 2 s.
   */
  close(): void {
    this.closed = true;
    if (this.socket.destroyed) return;
    if (!this.closeAfter) this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Tears the connection down; a pending exchange rejects with `reason` (default: reset). */
  destroy(reason?: ExchangeError): void {
    this.closed = true;
    if (reason) this.settle(undefined, reason);
    this.socket.destroy();
  }

  private settle(response: ParsedResponse | undefined, error?: ExchangeError): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    if (pending.pacer) clearTimeout(pending.pacer);
    if (response) {
      this.completed += 1;
      if (response.closeAfter) this.closeAfter = true;
      pending.resolve(response);
    } else {
      const failure = error ?? classifySocketError(this.lastError);
      failure.nothingReceived = pending.received === 0;
      pending.reject(failure);
    }
  }

  private onData(chunk: Buffer): void {
    const pending = this.pending;
    if (!pending) {
      // Bytes nobody asked for: the connection is out of step; never reuse it.
      this.destroy();
      return;
    }
    pending.received += chunk.length;
    let response: ParsedResponse | undefined;
    try {
      response = pending.parser.push(chunk);
    } catch (error) {
      this.destroy(classifySocketError(error as NodeJS.ErrnoException));
      return;
    }
    if (response) {
      // A response that arrives before the paced body was all sent leaves the body unfinished.
      if (pending.pacer) response.closeAfter = true;
      // After `Connection: close` the server closes first (TIME_WAIT stays on its side); see close().
      this.settle(response);
    }
  }

  private onEnd(): void {
    this.closed = true;
    const pending = this.pending;
    if (pending) {
      const response = pending.parser.end();
      if (response) this.settle(response);
      else this.settle(undefined, classifySocketError(this.lastError));
    }
  }

  private onClose(): void {
    this.closed = true;
    this.settle(undefined, classifySocketError(this.lastError));
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}
