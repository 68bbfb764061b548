/**
 * An incremental HTTP/1.1 response parser, just enough for the load generator: status line, headers,
 * bodies framed by Content-Length, chunked transfer coding, or the end of the connection. Interim
 * 1xx responses are skipped. We parse ourselves (rather than use node:http's client) so the generator
 * knows exactly whether a request was written to a socket and how each connection ended.
 */

export interface ParsedResponse {
  status: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** The first `maxBodyBytes` bytes of the body (the rest is counted, not kept). */
  body: Buffer;
  bodyBytes: number;
  /** True when the server will close the connection after this response. */
  closeAfter: boolean;
}

export class ResponseParseError extends Error {
  readonly code = 'EPROTO';
}

/** Where the parser is: reading the head, a sized body, chunk framing, or a body that ends at close. */
type ParserPhase =
  'head' | 'sized' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'until-close' | 'done';

const MAX_HEAD_BYTES = 64 * 1024;

export class ResponseParser {
  private buffer: Buffer = Buffer.alloc(0);
  private phase: ParserPhase = 'head';
  private remaining = 0;
  private response: ParsedResponse | undefined;
  private readonly bodyChunks: Buffer[] = [];
  private kept = 0;

  constructor(private readonly options: { headRequest: boolean; maxBodyBytes: number }) {}

  /** True once any byte of a (non-interim) response has arrived. */
  get started(): boolean {
    return this.buffer.length > 0 || this.phase !== 'head';
  }

  /** Feeds bytes; returns the response once complete. Throws ResponseParseError on garbage. */
  push(chunk: Buffer): ParsedResponse | undefined {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const progressed = this.step();
      if (this.phase === 'done') return this.complete();
      if (!progressed) return undefined;
    }
  }

  /** The connection ended: returns the response if its body was framed by the close, else undefined. */
  end(): ParsedResponse | undefined {
    if (this.phase === 'until-close') return this.complete();
    return undefined;
  }

  private complete(): ParsedResponse {
    const response = this.response;
    if (!response) throw new ResponseParseError('response completed without a head');
    response.body = Buffer.concat(this.bodyChunks);
    this.phase = 'done';
    return response;
  }

  private keep(data: Buffer): void {
    if (!this.response) return;
    this.response.bodyBytes += data.length;
    const room = this.options.maxBodyBytes - this.kept;
    if (room > 0) {
      const part = data.length > room ? data.subarray(0, room) : data;
      this.bodyChunks.push(part);
      this.kept += part.length;
    }
  }

  /** Consumes what it can of the buffer for the current phase; returns false when it needs more bytes. */
  private step(): boolean {
    switch (this.phase) {
      case 'head':
        return this.parseHead();
      case 'sized': {
        if (this.buffer.length === 0) return false;
        const take = Math.min(this.remaining, this.buffer.length);
        this.keep(this.buffer.subarray(0, take));
        this.buffer = this.buffer.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.phase = 'done';
        return true;
      }
      case 'chunk-size': {
        const eol = this.buffer.indexOf('\r\n');
        if (eol === -1) return this.guardLine();
        const size = Number.parseInt(this.buffer.toString('latin1', 0, eol).split(';')[0] ?? '', 16);
        if (!Number.isFinite(size) || size < 0) throw new ResponseParseError('bad chunk size');
        this.buffer = this.buffer.subarray(eol + 2);
        this.remaining = size;
        this.phase = size === 0 ? 'trailers' : 'chunk-data';
        return true;
      }
      case 'chunk-data': {
        if (this.buffer.length === 0) return false;
        const take = Math.min(this.remaining, this.buffer.length);
        this.keep(this.buffer.subarray(0, take));
        this.buffer = this.buffer.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.phase = 'chunk-crlf';
        return true;
      }
      case 'chunk-crlf':
        if (this.buffer.length < 2) return false;
        this.buffer = this.buffer.subarray(2);
        this.phase = 'chunk-size';
        return true;
      case 'trailers': {
        const eol = this.buffer.indexOf('\r\n');
        if (eol === -1) return this.guardLine();
        this.buffer = this.buffer.subarray(eol + 2);
        if (eol === 0) this.phase = 'done';
        return true;
      }
      case 'until-close':
        if (this.buffer.length === 0) return false;
        this.keep(this.buffer);
        this.buffer = Buffer.alloc(0);
        return false;
      case 'done':
        return false;
    }
  }

  private guardLine(): boolean {
    if (this.buffer.length > MAX_HEAD_BYTES) throw new ResponseParseError('line too long');
    return false;
  }

  private parseHead(): boolean {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end === -1) return this.guardLine();
    const lines = this.buffer.toString('latin1', 0, end).split('\r\n');
    this.buffer = this.buffer.subarray(end + 4);
    const match = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? '');
    if (!match)
      throw new ResponseParseError(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    const minor = match[1];
    const status = Number(match[2]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ResponseParseError('bad header line');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    if (status >= 100 && status < 200) return true; // interim response: the real one follows
    const connection = (headers['connection'] ?? '').toLowerCase();
    const closeAfter = connection.includes('close') || (minor === '0' && !connection.includes('keep-alive'));
    this.response = { status, headers, body: Buffer.alloc(0), bodyBytes: 0, closeAfter };
    const te = (headers['transfer-encoding'] ?? '').toLowerCase();
    if (this.options.headRequest || status === 204 || status === 304) {
      this.phase = 'done';
    } else if (te.includes('chunked')) {
      this.phase = 'chunk-size';
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (!Number.isSafeInteger(length) || length < 0) throw new ResponseParseError('bad Content-Length');
      this.remaining = length;
      this.phase = length === 0 ? 'done' : 'sized';
    } else {
      this.phase = 'until-close';
      this.response.closeAfter = true;
    }
    return true;
  }
}
