/**
 * The `command` health check's logic with a fake side: the argv goes to the side's exec (never the
 * network), bounded by `timeout` inside the LC and by the exec's own timeout and output limit; the
 * outcome names the command, its exit status and the last line it printed. Run for real inside LXC
 * LCs by test/e2e/lxc/lxc-health-command.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnderstudyError, type ExecOptions, type ExecResult } from '../../../src/core/index.ts';
import { checkHealth, type HealthCheck, type SwitchSide } from '../../../src/switch/index.ts';

const check: HealthCheck = {
  kind: 'command',
  argv: ['pg_isready', '-q'],
  timeoutMs: 1500,
  retries: 2,
  intervalMs: 0,
};

function side(answer: (argv: readonly string[]) => Partial<ExecResult> | Error): {
  side: SwitchSide;
  calls: { argv: readonly string[]; options: ExecOptions | undefined }[];
} {
  const calls: { argv: readonly string[]; options: ExecOptions | undefined }[] = [];
  return {
    calls,
    side: {
      name: 'lc2',
      netExec: () => Promise.reject(new Error('a command check must not use the network context')),
      signalService: () => Promise.resolve(),
      async exec(argv, options) {
        calls.push({ argv, options });
        const a = answer(argv);
        if (a instanceof Error) throw a;
        return { argv, exitCode: 0, signal: null, stdout: '', stderr: '', durationMs: 5, ...a };
      },
    },
  };
}

test('the command runs inside the LC under timeout, with bounded output, and exit 0 is healthy', async () => {
  const s = side(() => ({ exitCode: 0 }));
  const outcome = await checkHealth(s.side, check, '198.18.0.10', 5432);
  assert.deepEqual(outcome, { ok: true, detail: '"pg_isready -q" exited 0', attempts: 1 });
  assert.deepEqual(s.calls[0]?.argv, ['timeout', '1.500', 'pg_isready', '-q']);
  assert.equal(s.calls[0]?.options?.timeoutMs, 3500);
  assert.equal(s.calls[0]?.options?.maxBuffer, 4096);
  assert.ok(s.calls[0]?.options?.okCodes?.includes(2), 'a non-zero exit is an outcome, not an exec error');
});

test('a failing command is retried, then reported with its exit status and last line', async () => {
  const s = side(() => ({ exitCode: 2, stderr: 'starting\n/var/run/postgresql:5432 - no response\n' }));
  const outcome = await checkHealth(s.side, check, '198.18.0.10', 5432);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.attempts, 3);
  assert.equal(outcome.detail, '"pg_isready -q" in lc2 exited 2: /var/run/postgresql:5432 - no response');
});

test('a command that outlives its time is reported as such (coreutils 124, busybox 143)', async () => {
  for (const exitCode of [124, 143]) {
    const s = side(() => ({ exitCode, durationMs: 1502 }));
    const outcome = await checkHealth(s.side, { ...check, retries: 0 }, '198.18.0.10', 5432);
    assert.equal(outcome.detail, '"pg_isready -q" in lc2 did not finish within 1500 ms');
  }
  const s = side(() => new UnderstudyError('EXEC_TIMEOUT', 'lxc-attach … did not finish'));
  const outcome = await checkHealth(s.side, { ...check, retries: 0 }, '198.18.0.10', 5432);
  assert.equal(outcome.ok, false);
  assert.match(outcome.detail, /did not answer within 3500 ms/);
});

test('a side that cannot run commands fails the check; an unexpected exec error is not swallowed', async () => {
  const { exec: _, ...noExec } = side(() => ({})).side;
  const outcome = await checkHealth(noExec, { ...check, retries: 0 }, '198.18.0.10', 5432);
  assert.equal(outcome.ok, false);
  assert.match(outcome.detail, /cannot run "pg_isready -q" inside it/);
  const broken = side(() => new UnderstudyError('EXEC_NOT_FOUND', 'lxc-attach is not installed'));
  await assert.rejects(checkHealth(broken.side, check, '198.18.0.10', 5432), /lxc-attach is not installed/);
});
