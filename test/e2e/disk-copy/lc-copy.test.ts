/**
 * `understudy disk copy <lc> <disk> --to <lc2>` on real LCs of the namespace driver: lc1 runs a writer
 * inside while its system disk (703, same pool: snapshot) and application disk (704, onto another pool:
 * send/receive) are copied onto lc2's disks; lc2 then boots from the copy and holds what lc1 wrote up
 * to the cut.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addPool } from '../../../src/host/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';

void describe('disk copy between logical computers (CLI)', () => {
  let t: TestHost;

  before(async () => {
    t = await createTestHost();
    await addPool({ db: t.app.db, stateDir: t.stateDir, name: 'media2', sizeBytes: 2 * 1024 ** 3 });
    await t.lc({ name: 'lc1', addresses: [`${t.prefix}.10`], role: 'active' });
    // The system disk stays on the image's pool (the driver snapshots the image into it); the
    // application disk is on other media (the seed's DISK4).
    await t.lc(
      {
        name: 'lc2',
        addresses: [`${t.prefix}.11`],
        appDiskMb: 0,
        extraDisks: [{ name: 'app', sizeMb: 256, mountPath: '/srv', pool: 'media2' }],
      },
      { start: false },
    );
  });
  after(async () => {
    await t?.dispose();
  });

  void it('copies the running LC1 system and application disks onto LC2 while LC1 writes; LC2 boots from the copy', async () => {
    // The writer inside lc1: appends to its app disk and rewrites a file on its system disk, forever.
    await t.host.driver.exec('lc1', [
      'sh',
      '-c',
      'mkdir -p /root; sh -c \'i=0; while :; do i=$((i+1)); echo "line $i" >> /srv/journal; echo $i > /root/counter.tmp; mv /root/counter.tmp /root/counter; done\' </dev/null >/dev/null 2>&1 &',
    ]);
    const copies: Record<
      string,
      {
        mode: string;
        freezeMs: number;
        verification?: { method: string; digest: string | null };
        history: { writes: number; text: string };
        jobId: string;
      }
    > = {};
    for (const disk of ['system', 'app']) {
      const result = await t.cli(['--json', 'disk', 'copy', 'lc1', disk, '--to', 'lc2', '--verify']);
      copies[disk] = JSON.parse(result.stdout) as (typeof copies)[string];
    }
    assert.equal(copies.system?.mode, 'snapshot', 'system: same pool, an instant snapshot at the cut');
    assert.equal(copies.app?.mode, 'send-receive', 'app: main → media2, a cross-pool copy');
    for (const [disk, copy] of Object.entries(copies)) {
      // Same pool: the kernel compares the clone with the cut; across pools both trees are hashed.
      assert.equal(
        copy.verification?.method,
        copy.mode === 'snapshot' ? 'clone-diff' : 'tree-hash',
        `${disk}: verified at the cut`,
      );
      if (copy.mode === 'send-receive') assert.ok(copy.verification.digest, `${disk}: its tree hash`);
      assert.ok(copy.freezeMs < 1000, `${disk}: frozen ${copy.freezeMs} ms`);
    }
    // The writer kept running through both cuts.
    const before = Number((await t.host.driver.exec('lc1', ['cat', '/root/counter'])).stdout);
    await new Promise((r) => setTimeout(r, 200));
    const later = Number((await t.host.driver.exec('lc1', ['cat', '/root/counter'])).stdout);
    assert.ok(later > before, 'lc1 still writes after the copy');

    const history = await t.cli(['--json', 'disk', 'history', copies.app?.jobId ?? '', '--limit', '5']);
    const stored = JSON.parse(history.stdout) as {
      job: { state: string; history: { writes: number } };
      records: { path: string }[];
    };
    assert.equal(stored.job.state, 'succeeded');
    assert.ok(stored.job.history.writes > 0, 'the app disk copy recorded writes to the journal');
    assert.ok(stored.records.some((r) => r.path === 'journal'));

    await t.cli(['lc', 'start', 'lc2']);
    const journal = (await t.host.driver.exec('lc2', ['cat', '/srv/journal'])).stdout.trim().split('\n');
    assert.ok(journal.length > 0);
    // Up to the cut, the journal is complete and in order: line 1 … line N with no gap.
    journal.forEach((line, i) => assert.equal(line, `line ${i + 1}`));
    assert.match((await t.host.driver.exec('lc2', ['cat', '/root/counter'])).stdout, /^\d+\n$/);
  });
});
