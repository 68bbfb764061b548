// `understudy serve` as a real process: it listens, answers with the token only, and shuts down
// cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { exec, spawnProcess, waitFor } from '../../../src/core/index.ts';
import { freePort, tempDir } from '../monitor/fixtures.ts';

const repo = path.resolve(import.meta.dirname, '../../..');

void test(
  'understudy serve: authenticated API, graceful shutdown on SIGTERM',
  { timeout: 30_000 },
  async (t) => {
    const stateDir = tempDir('us-serve');
    t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    const port = await freePort();
    fs.writeFileSync(path.join(stateDir, 'token'), 'serve-token-0123456789abcdef0123456789\n');
    fs.writeFileSync(
      path.join(stateDir, 'monitor.yaml'),
      `api:\n  listen: 127.0.0.1\n  port: ${port}\n  tokenFile: token\n`,
    );
    const proc = spawnProcess(
      ['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', stateDir, 'serve'],
      { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.after(async () => {
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
      await proc.done;
    });
    const base = `http://127.0.0.1:${port}`;
    const up = await waitFor(
      async () =>
        (await fetch(`${base}/v1/health`)
          .then((r) => r.ok)
          .catch(() => false)) || undefined,
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.ok(up, 'the daemon answers /v1/health');
    assert.equal((await fetch(`${base}/v1/monitor/status`)).status, 401);
    const status = await fetch(`${base}/v1/monitor/status`, {
      headers: { authorization: 'Bearer serve-token-0123456789abcdef0123456789' },
    });
    assert.equal(status.status, 200);
    assert.equal(((await status.json()) as { running: boolean }).running, true);
    proc.child.kill('SIGTERM');
    const result = await proc.done;
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stderr, /daemon.stopped|understudy daemon stopped/);
  },
);

void test(
  'finding 14: serve makes a strong admin token on its first start and only then',
  { timeout: 60_000 },
  async (t) => {
    const stateDir = tempDir('us-serve-token');
    t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    const port = await freePort();
    fs.writeFileSync(path.join(stateDir, 'monitor.yaml'), `api:\n  listen: 127.0.0.1\n  port: ${port}\n`);
    const base = `http://127.0.0.1:${port}`;
    const start = async () => {
      const proc = spawnProcess(
        ['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', stateDir, 'serve'],
        { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      t.after(async () => {
        if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
        await proc.done;
      });
      const up = await waitFor(
        async () =>
          (await fetch(`${base}/v1/health`)
            .then((r) => r.ok)
            .catch(() => false)) || undefined,
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      assert.ok(up);
      return proc;
    };
    const first = await start();
    const file = path.join(stateDir, 'api-token');
    const token = fs.readFileSync(file, 'utf8').trim();
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'only root can read the token file');
    assert.ok(
      Buffer.from(token.split('_').slice(2).join('_'), 'base64url').length >= 16,
      'at least 128 random bits',
    );
    const ok = await fetch(`${base}/v1/lcs`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    first.child.kill('SIGTERM');
    const result = await first.done;
    assert.ok(!result.stderr.includes(token), 'the token is never logged');
    const second = await start();
    assert.equal(fs.readFileSync(file, 'utf8').trim(), token, 'a second start keeps the token');
    second.child.kill('SIGTERM');
    await second.done;
  },
);

void test(
  'the CLI talks to a running serve with --api: tokens, runs, errors from the daemon',
  { timeout: 60_000 },
  async (t) => {
    const stateDir = tempDir('us-serve-cli');
    t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    const port = await freePort();
    fs.writeFileSync(path.join(stateDir, 'monitor.yaml'), `api:\n  listen: 127.0.0.1\n  port: ${port}\n`);
    const proc = spawnProcess(
      ['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', stateDir, 'serve'],
      { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.after(async () => {
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
      await proc.done;
    });
    const base = `http://127.0.0.1:${port}`;
    assert.ok(
      await waitFor(
        async () =>
          (await fetch(`${base}/v1/health`)
            .then((r) => r.ok)
            .catch(() => false)) || undefined,
        { timeoutMs: 15_000, intervalMs: 100 },
      ),
    );
    const cli = (args: string[], env: Record<string, string> = {}) =>
      exec(['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', stateDir, ...args], {
        cwd: repo,
        okCodes: [0, 1, 2],
        env: { ...process.env, ...env } as Record<string, string>,
      });
    // The token comes from <state-dir>/api-token by default.
    const list = await cli(['--api', base, '--json', 'run', 'list']);
    assert.equal(list.exitCode, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), []);
    // A read-only operator's token: reading works, a change is refused by the daemon (403 → API_FORBIDDEN).
    const created = await cli(['--json', 'token', 'create', 'rick', '--scope', 'read']);
    const reader = (JSON.parse(created.stdout) as { token: string }).token;
    const refused = await cli(['--api', base, '--json', 'run', 'lc1', '--follow'], {
      UNDERSTUDY_TOKEN: reader,
    });
    assert.equal(refused.exitCode, 1);
    assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'API_FORBIDDEN');
    const missing = await cli(['--api', base, '--json', 'run', 'show', 'r000000-none']);
    assert.equal((JSON.parse(missing.stdout) as { error: { code: string } }).error.code, 'RUN_NOT_FOUND');
    const noHost = await cli(['--api', base, '--json', 'run', 'lc1']);
    assert.equal(
      (JSON.parse(noHost.stdout) as { error: { code: string } }).error.code,
      'HOST_NOT_INITIALISED',
    );
    const tokens = await cli(['--json', 'token', 'list']);
    const rick = (
      JSON.parse(tokens.stdout) as { id: string; operator: string; lastUsedAt: string | null }[]
    ).find((x) => x.operator === 'rick');
    assert.ok(rick?.lastUsedAt, 'the read-only token was used');
    assert.ok(!tokens.stdout.includes(reader), 'token list never shows a token');
    await cli(['token', 'revoke', rick.id]);
    const revoked = await cli(['--api', base, '--json', 'run', 'list'], { UNDERSTUDY_TOKEN: reader });
    assert.equal((JSON.parse(revoked.stdout) as { error: { code: string } }).error.code, 'API_UNAUTHORIZED');
    const down = await cli(['--api', 'http://127.0.0.1:1', '--json', 'run', 'list']);
    assert.equal((JSON.parse(down.stdout) as { error: { code: string } }).error.code, 'API_NOT_AVAILABLE');
    proc.child.kill('SIGTERM');
    await proc.done;
  },
);
