/**
 * A rollout driven from the daemon's HTTP API to its end, with the real processes: PostgreSQL 15
 * with TLS (the control plane), `understudy control run` (the scheduler) and `understudy serve
 * --control-dir` (the API) as child processes, two agents (fake host runner: the API's steering is
 * what is under test) on the control plane's PostgreSQL.
 *
 * The rollout is made over HTTP and waits for an approval; alice's first challenge (issued over
 * HTTP) is replaced by a second one from the CLI (`control rollout challenge`, as when the mail was
 * lost), so the first one's code is refused and the second one's starts the rollout; it is paused
 * and resumed over HTTP and completes; one LC is then rolled back over HTTP after the end, and the
 * rollout's record (API and `control rollout show`) shows every step and who took it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { exec, sleep, waitFor } from '../../../src/core/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { freePort } from '../monitor/fixtures.ts';
import {
  approvalCodeFromCli,
  createFakeAgents,
  spawnCliDaemon,
  startFleetDb,
  writeControlDir,
} from '../../helpers/fleet-fixture.ts';

interface Detail {
  id: number;
  state: string;
  reason: string | null;
  work: Record<string, number>;
  wavesDetail: {
    name: string;
    targets: { host: string; lc: string; state: string | null; rollback: string | null }[];
  }[];
  history: { actor: string; action: string; outcome: string; detail: Record<string, unknown> }[];
}

const cli = (args: string[]) =>
  exec([process.execPath, '--import', 'tsx', 'src/cli/entry.ts', ...args], { cwd: repoRoot });

test('a rollout driven over HTTP: created, approved with the newest challenge, paused, resumed, completed, one LC rolled back after the end', async (t) => {
  const fx = await startFleetDb(t);
  const agents = await createFakeAgents(fx, { hosts: ['ah1', 'ah2'], pollMs: 200 });
  for (const a of agents) a.start();

  // The control plane's directory (where and as whom to connect), its scheduler and the daemon.
  const controlDir = writeControlDir(fx);
  const log: string[] = [];
  spawnCliDaemon(fx, ['control', 'run', '--dir', controlDir, '--tick', '300'], { log });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fleet-api-e2e-'));
  t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const secret = randomBytes(32).toString('hex');
  const secretFile = path.join(stateDir, 'alice.secret');
  fs.writeFileSync(secretFile, secret, { mode: 0o600 });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  fs.writeFileSync(
    path.join(stateDir, 'monitor.yaml'),
    [
      'api:',
      '  listen: 127.0.0.1',
      `  port: ${port}`,
      'administrators:',
      '  - name: alice',
      '    email: alice@example.test',
      `    secretFile: ${secretFile}`,
      '',
    ].join('\n'),
  );
  spawnCliDaemon(fx, ['--state-dir', stateDir, 'serve', '--control-dir', controlDir], { log });
  const up = await waitFor(
    async () =>
      (await fetch(`${base}/v1/health`)
        .then((r) => r.ok)
        .catch(() => false)) || undefined,
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  assert.ok(up, `serve answers\n${log.join('')}`);
  const token = fs.readFileSync(path.join(stateDir, 'api-token'), 'utf8').trim();
  const call = async (method: 'GET' | 'POST', url: string, body?: unknown) => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const detail = async (id: number): Promise<Detail> =>
    (await call('GET', `/v1/fleet/rollouts/${id}`)).body.rollout as Detail;
  const code = (challenge: string): Promise<string> =>
    approvalCodeFromCli(challenge, 'approve all', secretFile);

  // Made over HTTP, waiting for an approval.
  const made = await call('POST', '/v1/fleet/rollouts', {
    name: 'openssl over http',
    patches: { securityOnly: true },
    canary: 1,
    maxConcurrency: 2,
    maxErrors: 0,
    watchSeconds: 2,
    requireApproval: true,
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const rollout = made.body.rollout as Detail;
  assert.equal(rollout.state, 'awaiting-approval');

  // The first challenge over HTTP; a second one from the CLI replaces it.
  const first = await call('POST', `/v1/fleet/rollouts/${rollout.id}/challenges`, { admin: 'alice' });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const firstChallenge = String(first.body.challenge);
  const reissued = JSON.parse(
    (
      await cli([
        '--json',
        'control',
        'rollout',
        'challenge',
        String(rollout.id),
        '--admin',
        'alice',
        '--dir',
        controlDir,
      ])
    ).stdout,
  ) as { challenge: string; replaced: number };
  assert.equal(reissued.replaced, 1);
  const approve = (challenge: string, c: string) =>
    call('POST', `/v1/fleet/rollouts/${rollout.id}/approval`, {
      admin: 'alice',
      challenge,
      decision: 'approve all',
      code: c,
    });
  const stale = await approve(firstChallenge, await code(firstChallenge));
  assert.equal(stale.status, 403);
  assert.deepEqual(
    [stale.body.code, (stale.body.details as { reason: string }).reason],
    ['APPROVAL_REJECTED', 'replaced'],
  );
  await sleep(1000);
  assert.equal((await detail(rollout.id)).state, 'awaiting-approval');
  assert.equal(
    (await detail(rollout.id)).wavesDetail.flatMap((w) => w.targets).filter((x) => x.state).length,
    0,
  );
  const approved = await approve(reissued.challenge, await code(reissued.challenge));
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.equal(approved.body.state, 'running');

  // Paused once the canary switched (within its watch), resumed, completed.
  const canary = await waitFor(
    async () =>
      (await detail(rollout.id)).wavesDetail[0]?.targets[0]?.state === 'succeeded' ? true : undefined,
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  assert.ok(canary, 'the canary switched');
  assert.equal((await call('POST', `/v1/fleet/rollouts/${rollout.id}/pause`)).body.state, 'paused');
  await sleep(3000);
  const paused = await detail(rollout.id);
  assert.equal(paused.state, 'paused');
  assert.equal(
    paused.wavesDetail[1]?.targets.every((x) => x.state === null),
    true,
    'nothing more while paused',
  );
  assert.equal((await call('POST', `/v1/fleet/rollouts/${rollout.id}/resume`)).body.state, 'running');
  const done = await waitFor(
    async () => {
      const d = await detail(rollout.id);
      return d.state === 'completed' || d.state === 'halted' ? d : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  assert.equal(done?.state, 'completed', log.join(''));
  assert.equal(done.work.succeeded, 4);

  // One LC rolled back after the end.
  const back = await call('POST', `/v1/fleet/rollouts/${rollout.id}/lcs/ah2/lc-b/rollback`);
  assert.equal(back.status, 202, JSON.stringify(back.body));
  const reverted = await waitFor(
    async () => {
      const d = await detail(rollout.id);
      const target = d.wavesDetail.flatMap((w) => w.targets).find((x) => x.host === 'ah2' && x.lc === 'lc-b');
      return target?.rollback === 'succeeded' ? { d, target } : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  assert.ok(reverted, 'the agent rolled ah2/lc-b back');
  assert.equal(reverted.target.state, 'reverted');
  assert.equal(reverted.d.state, 'completed');
  const cliUser = os.userInfo().username;
  assert.deepEqual(
    reverted.d.history.map((h) => `${h.actor}:${h.action}:${h.outcome}:${String(h.detail.via)}`),
    [
      'root:rollout.create:allowed:api',
      'root:rollout.challenge:allowed:api',
      `${cliUser}:rollout.challenge:allowed:cli`,
      'root:rollout.approve:refused:api',
      'alice:rollout.approve:allowed:api',
      'root:rollout.pause:allowed:api',
      'root:rollout.resume:allowed:api',
      'root:rollout.rollback-lc:allowed:api',
    ],
  );
  // The CLI shows the same record.
  const shown = JSON.parse(
    (await cli(['--json', 'control', 'rollout', 'show', String(rollout.id), '--dir', controlDir])).stdout,
  ) as { state: string; history: { action: string }[]; rollbacks: Record<string, { state: string }> };
  assert.equal(shown.state, 'completed');
  assert.equal(shown.history.at(-1)?.action, 'rollout.rollback-lc');
  assert.equal(shown.rollbacks['ah2/lc-b']?.state, 'succeeded');
});
