import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnProcess } from '../../../src/core/index.ts';
import type { LoadResult, LoadSummary, Mark, WindowLatency } from '../../../src/loadgen/index.ts';

const cliPath = fileURLToPath(new URL('../../../src/loadgen/cli.ts', import.meta.url));

test('the CLI runs a bounded load, takes marks on stdin and prints a JSON summary', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'loadgen-cli-'));
  const server = createServer((_req, res) => {
    res.setHeader('X-Served-By', 'lc1');
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  const port = (server.address() as AddressInfo).port;
  const out = join(dir, 'result.json');
  const cli = spawnProcess([
    process.execPath,
    '--import',
    'tsx',
    cliPath,
    '--url',
    `http://127.0.0.1:${port}/`,
    '--rate',
    '200',
    '--duration',
    '2',
    '--max-requests',
    '300',
    '--mix',
    'newconn=0.5,keepalive=0.5',
    '--out',
    out,
    '--expect-zero-failures',
  ]);
  let stdout = '';
  let stderr = '';
  cli.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  cli.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  t.after(() => {
    cli.child.kill('SIGKILL');
  });
  for (let waited = 0; !stderr.includes('"started"'); waited += 50) {
    assert.ok(waited < 20_000, `the CLI did not start: ${stderr}`);
    await sleep(50);
  }
  await sleep(300);
  cli.child.stdin?.write('mark switch-start\n');
  await sleep(300);
  cli.child.stdin?.write('mark switch-end\n');
  const exit = await cli.done;
  assert.equal(exit.exitCode, 0, stderr);
  const printed = JSON.parse(stdout) as {
    summary: LoadSummary;
    marks: Mark[];
    synRetransmits: number;
    markWindow: WindowLatency;
  };
  assert.equal(printed.summary.total, 300);
  assert.equal(printed.summary.byOutcome.ok, 300);
  assert.deepEqual(printed.summary.byServedBy, { lc1: 300 });
  assert.deepEqual(
    printed.marks.map((m) => m.label),
    ['switch-start', 'switch-end'],
  );
  assert.ok(printed.markWindow.window.count > 0 && printed.markWindow.window.count < 300);
  assert.equal(typeof printed.synRetransmits, 'number');
  assert.match(stderr, /"mark":"switch-start"/);
  const saved = JSON.parse(await readFile(out, 'utf8')) as LoadResult;
  assert.equal(saved.records.length, 300);
});

test('the CLI rejects bad arguments with exit code 2 and a JSON error', async () => {
  const cli = spawnProcess([
    process.execPath,
    '--import',
    'tsx',
    cliPath,
    '--url',
    'http://127.0.0.1:9/',
    '--rate',
    '-5',
    '--no-stdin',
  ]);
  const exit = await cli.done;
  assert.equal(exit.exitCode, 2);
  assert.match(exit.stderr, /"code":"INVALID_ARGUMENT"/);
});
