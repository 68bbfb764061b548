/**
 * A stateful switch carries every disk: after LC1's disks were copied onto LC2 (`understudy disk
 * copy`), a write LC1 makes to its system disk afterwards (a log line, a config change) and to its
 * application disk is on LC2 after `understudy switch --stateful`, LC2's own changes to its system
 * disk (standing in for its patch) stay, and the switch back carries LC2's writes to LC1. Every final
 * sync is incremental and reports its phases.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getLc } from '../../../src/inventory/index.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

interface SyncPhasesOutput {
  snapshotMs: number;
  diffMs: number;
  copyMs: number;
  verifyMs: number;
  files: number;
}

interface SwitchOutput {
  outcome: string;
  phases?: { prepare?: SyncPhasesOutput; sync?: SyncPhasesOutput };
}

describe('stateful switch: every disk, incrementally', () => {
  let f: RunFixture;
  const lcExec = (lc: string, script: string): Promise<unknown> =>
    f.t.host.driver.exec(lc, ['sh', '-c', script]);
  const lcRead = async (lc: string, file: string): Promise<string> =>
    (await f.t.host.driver.readFile(getLc(f.t.app.db, lc), file)).toString('utf8');

  before(async () => {
    f = await createRunFixture();
  });
  after(async () => f?.dispose());

  test('a write to the system disk after the copy reaches LC2, and LC2s writes come back', async () => {
    assert.equal(await f.put('/kv/before', 'written before the copy'), 200);
    for (const disk of ['system', 'app'])
      await f.t.cli(['--json', 'disk', 'copy', 'lc1', disk, '--to', 'lc2']);
    await f.t.host.driver.start(getLc(f.t.app.db, 'lc2'));
    await f.t.host.driver.waitUntilUp('lc2');
    // After the copy: LC1 logs and changes its config; LC2 is "patched" on its own system disk.
    await lcExec('lc1', 'echo "lc1 line after the copy" >> /var/log/understudy-sync.log');
    await lcExec('lc1', 'echo "setting=changed-on-lc1" > /etc/understudy-sync.conf');
    await lcExec(
      'lc2',
      'mkdir -p /usr/lib/understudy-patch && echo patched > /usr/lib/understudy-patch/file',
    );
    await lcExec('lc2', 'echo "setting=patched-on-lc2" > /etc/understudy-sync.conf'); // both changed it
    assert.equal(await f.put('/kv/after', 'written after the copy'), 200);

    const out = await f.t.cli(['--json', 'switch', 'lc1', 'lc2', '--method', 'instant', '--stateful']);
    const result = JSON.parse(out.stdout) as SwitchOutput;
    assert.equal(result.outcome, 'switched');
    assert.equal(await lcRead('lc2', '/var/log/understudy-sync.log'), 'lc1 line after the copy\n');
    assert.equal(await lcRead('lc2', '/usr/lib/understudy-patch/file'), 'patched\n');
    assert.equal(await lcRead('lc2', '/etc/understudy-sync.conf'), 'setting=patched-on-lc2\n');
    assert.equal((await f.get('/kv/after')).body, 'written after the copy');
    assert.equal((await f.get('/kv/before')).servedBy, 'lc2');
    // Incremental: a handful of paths, not the thousands of files of the LC's system disk. The
    // system disk is synced just before the hold (`prepare`), and so is the data disk's last pass
    // (its pair is on transid bases from its copy): the final sync inside the hold carries only
    // what LC1 wrote after that, here nothing but what the drain left.
    const prepare = result.phases?.prepare;
    const sync = result.phases?.sync;
    assert.ok(prepare && sync, `the switch reports its syncs' phases: ${out.stdout.slice(0, 400)}`);
    assert.ok(
      prepare.files > 0 && prepare.files < 500,
      `the system disk's sync carried ${prepare.files} paths`,
    );
    assert.ok(sync.files < 500, `final sync carried ${sync.files} paths`);

    await lcExec('lc2', 'echo "lc2 line after the switch" >> /var/log/understudy-sync.log');
    assert.equal(await f.put('/kv/on-lc2', 'written on lc2'), 200);
    const back = JSON.parse(
      (await f.t.cli(['--json', 'switch', 'lc2', 'lc1', '--method', 'swap-address', '--stateful'])).stdout,
    ) as SwitchOutput;
    assert.equal(back.outcome, 'switched');
    assert.equal(
      await lcRead('lc1', '/var/log/understudy-sync.log'),
      'lc1 line after the copy\nlc2 line after the switch\n',
    );
    assert.equal(await lcRead('lc1', '/etc/understudy-sync.conf'), 'setting=changed-on-lc1\n');
    assert.equal((await f.get('/kv/on-lc2')).body, 'written on lc2');
    assert.equal((await f.get('/kv/on-lc2')).servedBy, 'lc1');
  });
});
