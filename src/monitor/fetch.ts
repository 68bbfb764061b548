/**
 * Fetching from patch servers: HTTP(S) with conditional requests (ETag / If-Modified-Since) and
 * FTP (the MDTM modification time stands in for the validator). Every download is bounded in time
 * and size; exceeding the size limit aborts the transfer.
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Client as FtpClient } from 'basic-ftp';
import { UnderstudyError } from '../core/index.ts';

export interface FetchRequest {
  url: string;
  etag?: string | null;
  lastModified?: string | null;
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

export type FetchResult =
  | { status: 'not-modified' }
  | { status: 'ok'; body: Buffer; etag: string | null; lastModified: string | null };

/** The side effect "get bytes from a feed URL", injected so logic tests can use a fake. */
export interface Fetcher {
  /** Throws FEED_UNREACHABLE (with details.status for HTTP errors) or PATCH_TOO_LARGE. */
  fetch(request: FetchRequest): Promise<FetchResult>;
  /** Streams the URL into `file`; same errors. */
  download(request: FetchRequest & { file: string }): Promise<{ size: number }>;
}

/** The URL without credentials, for messages and logs. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

function tooLarge(url: string, maxBytes: number): UnderstudyError {
  return new UnderstudyError(
    'PATCH_TOO_LARGE',
    `${safeUrl(url)} is larger than the limit of ${maxBytes} bytes; the download was stopped`,
    { details: { url: safeUrl(url), maxBytes } },
  );
}

function unreachable(url: string, why: string, cause?: unknown, status?: number): UnderstudyError {
  return new UnderstudyError('FEED_UNREACHABLE', `${safeUrl(url)}: ${why}`, {
    cause,
    details: { url: safeUrl(url), status },
  });
}

/** A writable that counts bytes and fails the pipeline beyond maxBytes. */
function limitedSink(
  target: Writable | null,
  url: string,
  maxBytes: number,
  chunks?: Buffer[],
): Writable & { size: () => number } {
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes) return done(tooLarge(url, maxBytes));
      if (chunks) chunks.push(chunk);
      if (target) {
        if (!target.write(chunk)) return target.once('drain', () => done());
      }
      done();
    },
    final(done) {
      if (target) target.end(done);
      else done();
    },
  });
  return Object.assign(sink, { size: () => size });
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return `no answer within ${timeoutMs} ms`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

async function httpRequest(
  request: FetchRequest,
  sink: (body: Readable) => Promise<void>,
): Promise<FetchResult | { status: 'streamed'; etag: string | null; lastModified: string | null }> {
  const headers: Record<string, string> = {};
  if (request.etag) headers['if-none-match'] = request.etag;
  if (request.lastModified) headers['if-modified-since'] = request.lastModified;
  const signals = [AbortSignal.timeout(request.timeoutMs), ...(request.signal ? [request.signal] : [])];
  let response: Response;
  try {
    response = await fetch(request.url, { headers, signal: AbortSignal.any(signals), redirect: 'follow' });
  } catch (error) {
    throw unreachable(request.url, describeNetworkError(error, request.timeoutMs), error);
  }
  if (response.status === 304) {
    await response.body?.cancel();
    return { status: 'not-modified' };
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw unreachable(
      request.url,
      `HTTP ${response.status} ${response.statusText}`,
      undefined,
      response.status,
    );
  }
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > request.maxBytes) {
    await response.body.cancel();
    throw tooLarge(request.url, request.maxBytes);
  }
  try {
    await sink(Readable.fromWeb(response.body as never));
  } catch (error) {
    if (error instanceof UnderstudyError) throw error;
    throw unreachable(
      request.url,
      `transfer failed: ${describeNetworkError(error, request.timeoutMs)}`,
      error,
    );
  }
  return {
    status: 'streamed',
    etag: response.headers.get('etag'),
    lastModified: response.headers.get('last-modified'),
  };
}

async function withFtp<T>(
  request: FetchRequest,
  work: (client: FtpClient, path: string) => Promise<T>,
): Promise<T> {
  const url = new URL(request.url);
  const client = new FtpClient(request.timeoutMs);
  const abort = (): void => client.close();
  request.signal?.addEventListener('abort', abort, { once: true });
  const deadline = setTimeout(abort, request.timeoutMs);
  try {
    await client.access({
      host: url.hostname,
      port: url.port ? Number(url.port) : 21,
      user: url.username ? decodeURIComponent(url.username) : 'anonymous',
      password: url.password ? decodeURIComponent(url.password) : 'understudy@',
      secure: false,
    });
    return await work(client, decodeURIComponent(url.pathname));
  } catch (error) {
    if (error instanceof UnderstudyError) throw error;
    const why =
      client.closed && !(error as { code?: number }).code
        ? `no answer within ${request.timeoutMs} ms or connection closed`
        : error instanceof Error
          ? error.message
          : String(error);
    throw unreachable(request.url, why, error);
  } finally {
    clearTimeout(deadline);
    request.signal?.removeEventListener('abort', abort);
    client.close();
  }
}

async function ftpLastMod(client: FtpClient, path: string): Promise<string | null> {
  try {
    return (await client.lastMod(path)).toISOString();
  } catch {
    return null; // server without MDTM: always fetch
  }
}

export const realFetcher: Fetcher = {
  async fetch(request) {
    if (request.url.startsWith('ftp:')) {
      return withFtp(request, async (client, path) => {
        const lastModified = await ftpLastMod(client, path);
        if (lastModified && request.lastModified === lastModified) return { status: 'not-modified' } as const;
        const chunks: Buffer[] = [];
        await client.downloadTo(limitedSink(null, request.url, request.maxBytes, chunks), path);
        return { status: 'ok', body: Buffer.concat(chunks), etag: null, lastModified } as const;
      });
    }
    const chunks: Buffer[] = [];
    const result = await httpRequest(request, (body) =>
      pipeline(body, limitedSink(null, request.url, request.maxBytes, chunks)),
    );
    if (result.status !== 'streamed') return result;
    return {
      status: 'ok',
      body: Buffer.concat(chunks),
      etag: result.etag,
      lastModified: result.lastModified,
    };
  },

  async download(request) {
    const out = fs.createWriteStream(request.file, { mode: 0o600 });
    const sink = limitedSink(out, request.url, request.maxBytes);
    try {
      if (request.url.startsWith('ftp:')) {
        await withFtp(request, (client, path) => client.downloadTo(sink, path));
        // basic-ftp may resolve before the destination has flushed; make sure the file is complete.
        if (!sink.writableEnded) sink.end();
        await finished(out);
      } else {
        const result = await httpRequest({ ...request, etag: null, lastModified: null }, (body) =>
          pipeline(body, sink),
        );
        if (result.status === 'not-modified') throw unreachable(request.url, 'unexpected 304 Not Modified');
      }
    } finally {
      out.destroy();
    }
    return { size: sink.size() };
  },
};
