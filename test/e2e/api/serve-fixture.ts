/** `understudy serve` as a real process on a test host's state dir, for end-to-end tests of the API. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnProcess, waitFor, type SpawnedProcess } from '../../../src/core/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { freePort } from '../monitor/fixtures.ts';

export interface ServeProcess {
  base: string;
  /** The admin token serve made on its first start. */
  token: string;
  proc: SpawnedProcess;
  /**
   * A request with the admin token (or `options.token`; null sends none); resolves with the status
   * and the JSON body.
   */
  api<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    body?: unknown,
    options?: { token?: string | null },
  ): Promise<{ status: number; body: T }>;
  /** Every stored event after `after` (the stream with follow=false). */
  events(
    after?: number,
  ): Promise<{ id: number; type: string; runId: string | null; data: Record<string, unknown> }[]>;
  /** SIGTERM, then SIGKILL after 60 s. */
  stop(): Promise<void>;
}

/** `options.env` is added to serve's environment (e.g. to leave the test suite's driver gate unset). */
export async function startServe(
  stateDir: string,
  yaml: string[] = [],
  options: { env?: Record<string, string> } = {},
): Promise<ServeProcess> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  fs.writeFileSync(
    path.join(stateDir, 'monitor.yaml'),
    ['api:', '  listen: 127.0.0.1', `  port: ${port}`, ...yaml, ''].join('\n'),
  );
  const proc = spawnProcess(
    ['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', stateDir, 'serve'],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: options.env,
    },
  );
  const stop = async (): Promise<void> => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    proc.child.kill('SIGTERM');
    const done = await Promise.race([proc.done, new Promise((r) => setTimeout(r, 60_000))]);
    if (!done) proc.child.kill('SIGKILL');
    await proc.done;
  };
  const up = await waitFor(
    async () =>
      (await fetch(`${base}/v1/health`)
        .then((r) => r.ok)
        .catch(() => false)) || undefined,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  if (!up) {
    await stop();
    assert.fail(`serve did not answer at ${base}`);
  }
  let token: string;
  try {
    token = fs.readFileSync(path.join(stateDir, 'api-token'), 'utf8').trim();
  } catch (error) {
    // No first token (the store already had one): nothing to talk with, and serve must not outlive the test.
    await stop();
    throw error;
  }
  const api: ServeProcess['api'] = async (method, url, body, options = {}) => {
    const bearer = options.token === undefined ? token : options.token;
    const res = await fetch(`${base}${url}`, {
      method,
      headers: {
        ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as never };
  };
  return {
    base,
    token,
    proc,
    api,
    async events(after = 0) {
      const res = await fetch(`${base}/v1/events?after=${after}&follow=false`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await res.text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as never);
    },
    stop,
  };
}
