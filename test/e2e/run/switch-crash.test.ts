/**
 * A standalone `understudy switch` killed (SIGKILL) at its crash points: the next understudy command
 * that changes state, or `serve` at its start, finishes the switch when it was past the point of no
 * return and reverses it before; the service answers every request of the load generator throughout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnProcess, waitFor } from '../../../src/core/index.ts';
import { listSyncBases } from '../../../src/disk-copy/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { catchUpDisks } from '../../../src/run/index.ts';
import { SwitchJournal } from '../../../src/switch/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('understudy switch killed at its crash points', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
    await f.t.host.driver.start(getLc(f.t.app.db, 'lc2'));
    await f.t.host.driver.waitUntilUp('lc2');
    // A catch-up pass, as the patch run makes before its switch: the application disk's pair leaves
    // the copy's snapshots for transid bases, which the final syncs below then go by.
    await catchUpDisks(f.t.host, getLc(f.t.app.db, 'lc1'), getLc(f.t.app.db, 'lc2'));
    assert.ok(
      listSyncBases(f.t.app.db).some((b) => b.transids !== undefined),
      'the application disk is on transid bases',
    );
  });
  after(async () => f?.dispose());

  const killedSwitch = async (point: string): Promise<void> => {
    const killed = spawnProcess(
      [
        process.execPath,
        '--import',
        'tsx',
        path.join(repoRoot, 'src/cli/entry.ts'),
        '--state-dir',
        f.t.stateDir,
        'switch',
        'lc1',
        'lc2',
        '--method',
        'instant',
        '--stateful',
      ],
      { cwd: repoRoot, env: { UNDERSTUDY_CRASH_AT: point } },
    );
    const ended = await killed.done;
    assert.equal(ended.signal, 'SIGKILL', `killed at ${point}: ${ended.stderr.slice(-500)}`);
  };
  const lastSwitch = () => new SwitchJournal(f.t.app.db).list(1)[0];

  for (const [point, outcome] of [
    ['switch/lc1-private-address:after', 'reversed'],
    ['switch/lc2-takes-address:after', 'switched'],
    ['switch/drain:after', 'switched'],
    // Killed once the application disk's final sync is done, before the step is journalled (the system
    // disk was synced before the hold): the recovery syncs again (what the sync left is removed, the
    // pair re-based on what it recorded) and finishes; the key is on LC2.
    ['switch/final-sync:during', 'switched'],
  ] as const) {
    test(`killed at ${point}: the next command ${outcome === 'switched' ? 'finishes' : 'reverses'} it, 0 failed requests`, async () => {
      const key = `/kv/${point.replace(/[^a-z0-9-]/gi, '-')}`;
      assert.equal(await f.put(key, point), 200);
      const load = await f.load(150);
      await killedSwitch(point);
      assert.equal(lastSwitch()?.state, 'running', 'the switch was left half done');
      // The next command that changes state recovers first.
      await f.t.cli(['lc', 'exec', 'lc1', '--', 'true']);
      assert.equal(lastSwitch()?.state, outcome);
      const holder = outcome === 'switched' ? 'lc2' : 'lc1';
      assert.equal((await f.get(key)).servedBy, holder);
      assert.equal((await f.get(key)).body, point, 'the data is there');
      if (outcome === 'switched')
        await f.t.cli(['--json', 'switch', 'lc2', 'lc1', '--method', 'swap-address', '--stateful']);
      const report = await load.stop();
      assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
      assert.equal((await f.get('/version')).servedBy, 'lc1');
    });
  }

  test('killed past the point of no return: serve finishes it at its start, 0 failed requests', async (t) => {
    const load = await f.load(150);
    await killedSwitch('switch/lc2-takes-address:after');
    const port = await freePort();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      path.join(f.t.stateDir, 'monitor.yaml'),
      `api:\n  listen: 127.0.0.1\n  port: ${port}\n  token: serve-token-0123456789abcdef0123456789\n`,
    );
    const serve = spawnProcess(
      [
        process.execPath,
        '--import',
        'tsx',
        path.join(repoRoot, 'src/cli/entry.ts'),
        '--state-dir',
        f.t.stateDir,
        'serve',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.after(async () => {
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
      await serve.done;
    });
    const up = await waitFor(
      async () =>
        (await fetch(`http://127.0.0.1:${port}/v1/health`)
          .then((r) => r.ok)
          .catch(() => false)) || undefined,
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    assert.ok(up, 'serve is up');
    assert.equal(lastSwitch()?.state, 'switched', 'serve finished the switch before serving');
    assert.equal((await f.get('/version')).servedBy, 'lc2');
    serve.child.kill('SIGTERM');
    await serve.done;
    await f.t.cli(['--json', 'switch', 'lc2', 'lc1', '--method', 'swap-address', '--stateful']);
    const report = await load.stop();
    assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
  });
});
