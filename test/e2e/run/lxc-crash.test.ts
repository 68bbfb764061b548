/**
 * Crash safety on a real server: the patch run of Debian nginx (nginx + nginx-common to the security
 * version, one apt transaction on the standby) between two unprivileged LXC LCs booting systemd, under
 * load from a client namespace, with the manager killed (SIGKILL) again and again: before the copy of
 * the system disk, in the middle of its full pass (LC2's disks are on a pool of their own, so the copy
 * is a real btrfs send/receive, as in the demo) and after it, after the copy of the application disk, after the patches are written, after
 * the patched standby booted, rebooted and was checked, in the middle of the switch (LC2 held, before
 * it takes the address: reversed, then switched again), right after the point of no return (LC2 took
 * the address: finished). Each time the next understudy command resumes the run (recovery at its
 * start) — and is itself killed at the next point; the last one finishes it. Throughout, no request
 * fails; the service ends on the patched LC2 with LC1's data; LC1 is left as it was.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnProcess } from '../../../src/core/index.ts';
import { startClientLoad } from '../../../src/demo/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { getRun, listRuns } from '../../../src/run/index.ts';
import { repoRoot, type TestClient, type TestHost } from '../../helpers/host-fixture.ts';
import { securityUpdate } from '../lxc/debs.ts';
import { createNginxRunBed, nginxSet, type NginxRunBed } from '../lxc/nginx-run-bed.ts';

/**
 * Where each manager in turn is killed; each point lies after the previous one in the run. A kill
 * inside the switch before its point of no return is reversed by the next command, which then runs
 * the switch again; one after it (for nginx's instant switch: LC2 took the address) is finished by
 * the next command's recovery, which also finishes the run: so it is the last kill of the chain.
 */
const crashPoints = [
  'copy-system:before',
  'copy-system:during',
  'copy-system:after',
  'copy-app:after',
  'write-patches:after',
  'boot-standby:after',
  'reboot-standby:after',
  'check-standby:after',
  'switch/hold:after',
  'switch/lc2-takes-address:after',
];

/** `btrfs send`/`btrfs receive` processes whose command line names `dir`. */
function btrfsProcessesNaming(dir: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (/btrfs$/.test(argv[0] ?? '') && argv.some((a) => a.includes(dir)))
        out.push(`${pid}: ${argv.join(' ')}`);
    } catch (error) {
      // The process ended while the list was read.
      if (!(error instanceof Error && 'code' in error && (error.code === 'ENOENT' || error.code === 'ESRCH')))
        throw error;
    }
  }
  return out;
}

describe('the manager is killed at every step of a real nginx patch run on LXC', () => {
  let bed: NginxRunBed;
  let t: TestHost;
  let client: TestClient;
  before(async () => {
    bed = await createNginxRunBed({ standbyPool: true });
    ({ t, client } = bed);
  });
  after(async () => bed?.dispose());

  /** One understudy command as its own process, killed at `crashAt` when given. */
  const manager = (args: string[], crashAt?: string) =>
    spawnProcess(
      [
        process.execPath,
        '--import',
        'tsx',
        path.join(repoRoot, 'src/cli/entry.ts'),
        '--state-dir',
        t.stateDir,
        ...args,
      ],
      { cwd: repoRoot, ...(crashAt ? { env: { UNDERSTUDY_CRASH_AT: crashAt } } : {}) },
    ).done;
  const dpkgVersion = async (lc: string, pkg: string): Promise<string> =>
    (await t.host.driver.exec(lc, ['dpkg-query', '-W', '-f', '${Version}', pkg])).stdout;

  test('each next command resumes the run; it ends switched to the patched standby, 0 failed requests', async () => {
    const installed = await dpkgVersion('lc1', 'nginx');
    const update = await securityUpdate(nginxSet, installed);
    console.log(
      update.repacked
        ? `# the archives have no nginx newer than ${installed}: the real package is repacked as ${update.to}`
        : `# nginx ${update.from} (bookworm main) -> ${update.to} (from the archives, apt-get download)`,
    );
    for (const [i, file] of update.files.entries()) {
      const name = nginxSet[i] ?? '';
      await t.cli(['patch', 'add', file, '--name', name, '--format', 'deb', '--category', 'security']);
      await t.cli(['patch', 'mark', name, '--lc', 'lc1', '--next-run', 'on']);
    }
    // Data on LC1's application disk: the copy and the final sync must carry it across the crashes.
    await t.host.driver.exec('lc1', ['sh', '-c', 'echo "written on lc1" > /srv/app/marker']);

    const load = await startClientLoad({
      netns: client.netns,
      url: `http://${t.prefix}.10/`,
      rate: 200,
      maxDurationS: 420,
      mix: 'newconn=0.5,keepalive=0.5',
    });
    const killed: string[] = [];
    let runId = '';
    let report: Awaited<ReturnType<typeof load.stop>> | undefined;
    // The load stops whatever happens (a failed assertion must not leave it running).
    try {
      for (const [i, point] of crashPoints.entries()) {
        // The first manager starts the run; every later one is the next command, resuming it.
        const args = i === 0 ? ['run', 'lc1', '--skip-scan'] : ['run', 'resume', runId];
        const ended = await manager(args, point);
        assert.equal(
          ended.signal,
          'SIGKILL',
          `the manager should have been killed at ${point} (${args.join(' ')}): exit ${String(ended.exitCode)}\n${ended.stderr.slice(-800)}`,
        );
        killed.push(point);
        runId ||= listRuns(t.app.db)[0]?.id ?? '';
        assert.ok(runId, 'the run is journalled');
        assert.equal(getRun(t.app.db, runId).state, 'running', `after the kill at ${point}`);
        // Before the switch LC1 serves on between two managers; inside it, new requests may wait (LC2
        // is held) until the next command's recovery reverses or finishes the switch: the load judges.
        if (!point.startsWith('switch/')) {
          const now = await client.get(`http://${t.prefix}.10/`);
          assert.equal(now.status, 200, `the service answers after the kill at ${point}`);
          assert.equal(now.servedBy, 'lc1', point);
        }
      }
      const last = await manager(['--json', 'run', 'resume', runId]);
      assert.equal(last.exitCode, 0, last.stderr.slice(-800));
    } finally {
      await new Promise((r) => setTimeout(r, 1000));
      report = await load.stop();
    }
    const run = getRun(t.app.db, runId);
    console.log(
      `# killed at ${killed.length} points; ${report.summary.total} requests, ${report.summary.failed} failed, served by ${JSON.stringify(report.summary.byServedBy)}; latency max ${report.summary.latency.max} ms`,
    );
    assert.deepEqual(killed, crashPoints);
    // The send and receive the kill in the middle of the copy left behind were ended by the recovery.
    assert.deepEqual(btrfsProcessesNaming(t.stateDir), []);
    assert.equal(run.state, 'switched', run.error ?? '');
    assert.equal(report.summary.failed, 0, `failed requests: ${JSON.stringify(report.summary.byOutcome)}`);
    assert.ok((report.summary.byServedBy.lc1 ?? 0) > 0 && (report.summary.byServedBy.lc2 ?? 0) > 0);

    // The patched standby serves, with LC1's data; the patches are recorded as applied.
    const now = await client.get(`http://${t.prefix}.10/`);
    assert.equal(now.status, 200);
    assert.equal(now.servedBy, 'lc2');
    for (const p of nginxSet) assert.equal(await dpkgVersion('lc2', p), update.to);
    assert.equal(
      (await t.host.driver.exec('lc2', ['systemctl', 'is-active', 'nginx'])).stdout.trim(),
      'active',
    );
    assert.equal((await t.host.driver.exec('lc2', ['cat', '/srv/app/marker'])).stdout, 'written on lc1\n');
    assert.equal(getLc(t.app.db, 'lc2').role, 'active');
    assert.equal(getLc(t.app.db, 'lc1').role, 'retired');
    const states = bed.catalogue.lcStates({ lc: 'lc1' });
    assert.deepEqual(
      nginxSet
        .map((p) => states.find((s) => s.patch === p))
        .map((s) => [s?.applyNextRun, s?.appliedAt !== null]),
      nginxSet.map(() => [false, true]),
      'both patches recorded as applied, no longer marked',
    );
    // LC1 as it was: the old packages, nginx running (the rollback target), no patch files.
    for (const p of nginxSet) assert.equal(await dpkgVersion('lc1', p), update.from);
    assert.equal(
      (await t.host.driver.exec('lc1', ['systemctl', 'is-active', 'nginx'])).stdout.trim(),
      'active',
    );
    const lc1Files = await t.host.driver.exec('lc1', ['ls', '/var/lib/understudy'], { okCodes: [0, 2] });
    assert.equal(lc1Files.stdout.trim(), '', 'no patch table or patches on lc1');
  });
});
