/**
 * The CLI as a client of a running `serve` (`--api URL`, token from --token, UNDERSTUDY_TOKEN or
 * <state-dir>/api-token): so that two operators never run two managers on one host. Errors of the
 * API come back as the same UnderstudyError the local command would throw.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, errorCatalogue, isErrno, type ErrorCode } from '../core/index.ts';

export interface ApiClient {
  url: string;
  request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', pathname: string, body?: unknown): Promise<T>;
  /**
   * Reads `/v1/events` (Server-Sent Events) and calls `onEvent` until it returns true, the stream ends
   * or `signal` aborts. `onOpen` is called once the stream is open (from then on no event is missed).
   */
  follow(
    query: { run?: string; after?: number; signal?: AbortSignal; onOpen?: () => void },
    onEvent: (event: StreamEvent) => boolean | void,
  ): Promise<void>;
}

export interface StreamEvent {
  id: number;
  at: string;
  type: string;
  runId: string | null;
  lc: string | null;
  data: Record<string, unknown>;
}

export function resolveToken(explicit: string | undefined, stateDir: string): string {
  const token = explicit ?? process.env.UNDERSTUDY_TOKEN;
  if (token) return token;
  try {
    return fs.readFileSync(path.join(stateDir, 'api-token'), 'utf8').trim();
  } catch (error) {
    if (!isErrno(error, 'ENOENT') && !isErrno(error, 'EACCES')) throw error;
    throw new UnderstudyError('API_UNAUTHORIZED', 'No API token for --api', {
      hint: 'Pass --token, set UNDERSTUDY_TOKEN, or make one with `understudy token create <you> --scope admin`.',
    });
  }
}

export function createApiClient(url: string, token: string): ApiClient {
  const base = url.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${token}` };
  const unreachable = (error: unknown): UnderstudyError =>
    new UnderstudyError('API_NOT_AVAILABLE', `understudy serve does not answer at ${base}`, {
      cause: error,
      hint: 'Start it (`understudy serve`) or check --api.',
    });
  return {
    url: base,
    async request<T>(
      method: 'GET' | 'POST' | 'PUT' | 'DELETE',
      pathname: string,
      body?: unknown,
    ): Promise<T> {
      const res = await fetch(`${base}${pathname}`, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).catch((error: unknown) => {
        throw unreachable(error);
      });
      const payload = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok) {
        const code = String(payload.code ?? 'INTERNAL');
        throw new UnderstudyError(
          (code in errorCatalogue ? code : 'INTERNAL') as ErrorCode,
          String(payload.message ?? `${method} ${pathname}: HTTP ${res.status}`),
          { hint: typeof payload.hint === 'string' ? payload.hint : undefined },
        );
      }
      return payload as T;
    },
    async follow(query, onEvent) {
      const params = new URLSearchParams();
      if (query.run) params.set('run', query.run);
      if (query.after !== undefined) params.set('after', String(query.after));
      const controller = new AbortController();
      if (query.signal?.aborted) return;
      const stop = (): void => controller.abort();
      query.signal?.addEventListener('abort', stop, { once: true });
      const res = await fetch(`${base}/v1/events?${params}`, { headers, signal: controller.signal }).catch(
        (error: unknown) => {
          query.signal?.removeEventListener('abort', stop);
          if (query.signal?.aborted) return null;
          throw unreachable(error);
        },
      );
      if (!res) return;
      if (!res.ok || !res.body) throw unreachable(new Error(`HTTP ${res.status}`));
      query.onOpen?.();
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (data && onEvent(JSON.parse(data) as StreamEvent) === true) return;
          }
        }
      } catch (error) {
        if (!query.signal?.aborted) throw error;
      } finally {
        query.signal?.removeEventListener('abort', stop);
        controller.abort();
      }
    },
  };
}
