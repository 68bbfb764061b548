// The patch, feed and monitor commands as an operator runs them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../../src/cli/index.ts';
import { insertLc, inventorySchema } from '../../../src/inventory/index.ts';
import { openStore } from '../../../src/store/index.ts';
import { PatchServerDir, startHttpServer, tempDir } from '../monitor/fixtures.ts';

/** Runs the CLI in-process (a subprocess per command costs ~2 s of tsx start-up each). */
async function runCli(
  argv: string[],
  okCodes: number[],
): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  // The CLI writes strings; the test runner's own reporting (binary) must pass through untouched.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === 'string'
      ? out.push(chunk) > 0
      : writeOut(chunk, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === 'string'
      ? err.push(chunk) > 0
      : writeErr(chunk, ...rest)) as typeof process.stderr.write;
  let exitCode: number;
  try {
    exitCode = await main(argv);
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
  const result = { stdout: out.join(''), stderr: err.join(''), exitCode };
  assert.ok(okCodes.includes(exitCode), `understudy ${argv.join(' ')} exited ${exitCode}: ${result.stderr}`);
  return result;
}

void test('understudy patch / feed / monitor commands', { timeout: 60_000 }, async (t) => {
  const stateDir = tempDir('us-cli');
  t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const cli = (args: string[], okCodes = [0]) => runCli(['--state-dir', stateDir, ...args], okCodes);
  const json = async <T>(args: string[]): Promise<T> =>
    JSON.parse((await cli(['--json', ...args])).stdout) as T;

  const file = path.join(stateDir, 'fix.diff');
  fs.writeFileSync(file, '--- a/x\n+++ b/x\n@@ -1 +1 @@\n-1\n+2\n');
  const added = await json<{ patch: { name: string; categories: string[] } }>([
    'patch',
    'add',
    file,
    '--category',
    'security,bugfix',
    '--format',
    'diff',
    '--name',
    'fix-1',
  ]);
  assert.deepEqual(added.patch.categories, ['bugfix', 'security']);
  const bad = await cli(
    [
      'patch',
      'add',
      file,
      '--category',
      'security',
      '--format',
      'diff',
      '--name',
      'fix-2',
      '--sha256',
      '0'.repeat(64),
    ],
    [1],
  );
  assert.match(bad.stderr, /has sha256 .* but 0{64} was declared/);
  assert.match(
    (await cli(['patch', 'add', file, '--category', 'urgent', '--format', 'diff'], [2])).stderr,
    /Unknown patch category "urgent"/,
  );
  // A patch is marked for an LC of the resource table (a row is enough here: nothing runs).
  const store = openStore(path.join(stateDir, 'understudy.db'), [inventorySchema]);
  insertLc(store, {
    name: 'web1',
    driver: 'namespace',
    image: 'busybox',
    cpus: '0',
    cpuSharePercent: 100,
    memoryMb: 128,
    role: 'active',
    disks: [],
    nics: [],
  });
  store.close();
  await cli(['patch', 'mark', 'fix-1', '--lc', 'web1', '--next-run', 'on']);
  const human = (await cli(['patch', 'list', '--lc', 'web1'])).stdout;
  assert.match(human, /fix-1\s+bugfix,security\s+not yet\s+yes/);

  const served = tempDir('us-cli-srv');
  t.after(() => fs.rmSync(served, { recursive: true, force: true }));
  const dir = new PatchServerDir(served).add({ name: 'vendor-1', content: 'v1\n' });
  const http = await startHttpServer(served);
  t.after(() => http.close());
  fs.writeFileSync(path.join(stateDir, 'vendor.pub'), dir.publicKeyBase64);
  await cli([
    'feed',
    'add',
    'vendor',
    '--kind',
    'patch-server',
    '--url',
    http.url,
    '--public-key',
    `@${path.join(stateDir, 'vendor.pub')}`,
    '--interval',
    '600',
  ]);
  assert.match(
    (
      await cli(
        [
          'feed',
          'add',
          'vendor',
          '--kind',
          'patch-server',
          '--url',
          http.url,
          '--public-key',
          dir.publicKeyBase64,
        ],
        [1],
      )
    ).stderr,
    /already exists/,
  );
  const run = await json<{ results: { feed: string; outcome: string; registered: string[] }[] }>([
    'monitor',
    'run',
  ]);
  assert.deepEqual(run.results, [{ feed: 'vendor', outcome: 'ok', registered: ['vendor-1'], failures: [] }]);
  const status = (await cli(['monitor', 'status'])).stdout;
  assert.match(status, /vendor\s+patch-server\s+\S+\s+ok\s+0\s+\S+\s+1/);

  dir.publish({ signature: null });
  const failed = await cli(['monitor', 'run'], [1]);
  assert.match(failed.stderr, /FEED_SIGNATURE_INVALID|no signature/);
  assert.match((await cli(['monitor', 'status'])).stdout, /failed\s+1.*FEED_SIGNATURE_INVALID/);
  await cli(['feed', 'remove', 'vendor']);
  assert.match((await cli(['feed', 'list'])).stdout, /No feeds/);
});
