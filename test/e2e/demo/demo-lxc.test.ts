/**
 * The README's first quick-start command, end to end: `understudy demo` (the lxc demo, the default)
 * patches real Debian nginx in an unprivileged LXC container booting systemd, with the security
 * archive's nginx taken in through the monitor's apt feed (the host's security archive as apt fetched
 * it, served on the demo's bridge and verified with debian-archive-keyring), under 1,000 requests/s from
 * a client namespace, 10 % of them writes to the key-value store beside nginx (data on the application
 * disk). The test checks what the report claims against the facts: 0 failed requests, served by both
 * LCs, nginx moved from the image's version to the security archive's, the .debs from the feed, every
 * key written before the run and every write acknowledged during it read back after it (a stateful run,
 * cut by the store's writes), a verdict that names every missed figure and an exit status that follows
 * it; and that the demo leaves nothing behind. The image comes from the test cache (same inputs as the LXC tests' image).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { exec } from '../../../src/core/index.ts';
import type { DemoJudgement, DemoReport } from '../../../src/demo/index.ts';
import { compareDebianVersions } from '../../../src/monitor/index.ts';
import { repoRoot } from '../../helpers/host-fixture.ts';
import { testCacheDir } from '../lxc/debs.ts';
import { archiveVersions } from '../updates/real-debs.ts';

type DemoJson = Omit<DemoReport, 'load'> & {
  load: Omit<DemoReport['load'], 'records'>;
  verdict: DemoJudgement;
};

/** Processes whose command line names `dir` (an LXC container of the demo would). */
function processesNaming(dir: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(dir)) out.push(`${pid}: ${cmdline}`);
    } catch {
      // The process ended while the list was read.
    }
  }
  return out;
}

void test(
  'understudy demo: real Debian nginx on LXC patched from the security archive under load',
  { timeout: 900_000 },
  async () => {
    const result = await exec(
      [
        process.execPath,
        '--import',
        'tsx',
        path.join(repoRoot, 'src/cli/entry.ts'),
        '--json',
        'demo',
        '--rate',
        '1000',
      ],
      {
        cwd: repoRoot,
        okCodes: [0, 1],
        timeoutMs: 840_000,
        env: { ...process.env, UNDERSTUDY_IMAGE_CACHE: testCacheDir },
      },
    );
    const report = JSON.parse(result.stdout) as DemoJson;
    console.log(
      result.stderr
        .split('\n')
        .filter((l) => /^(patch|image):/.test(l))
        .map((l) => `# ${l}`)
        .join('\n'),
    );
    const s = report.load.summary;
    console.log(
      `# ${s.total} requests at ${s.achievedRate.toFixed(0)}/s, ${s.failed} failed, served by ${JSON.stringify(s.byServedBy)}; run ${report.run.state}, wall ${(report.wallMs / 1000).toFixed(1)} s`,
    );
    console.log(
      `# data: ${report.dataChecked} keys read back (200 before, ${report.load.ackedWrites.length} acknowledged during the run), ${report.dataLost.length} lost; switch cut by ${(report.run.facts.switchResult as { cut?: string } | undefined)?.cut ?? '?'}`,
    );
    const switched = report.run.facts.switchResult as
      { holdMs?: number; syncMs?: number; phases?: Record<string, unknown> } | undefined;
    console.log(
      `# switch: hold ${switched?.holdMs?.toFixed(0) ?? '?'} ms, final sync ${switched?.syncMs?.toFixed(0) ?? '?'} ms; phases ${JSON.stringify(switched?.phases ?? {})}`,
    );
    for (const step of report.run.steps)
      console.log(`#   ${step.name} ${((step.durationMs ?? 0) / 1000).toFixed(2)} s`);
    for (const line of report.verdict.lines) console.log(`#   ${line}`);

    assert.equal(report.driver, 'lxc', 'lxc is the default demo');
    assert.equal(report.run.state, 'switched', report.run.error ?? '');
    assert.ok(s.achievedRate >= 900, `the client sent ${s.achievedRate.toFixed(0)} requests/s`);
    assert.equal(s.failed, 0, `failed requests: ${JSON.stringify(s.byOutcome)}`);
    assert.ok((s.byServedBy.lc1 ?? 0) > 0 && (s.byServedBy.lc2 ?? 0) > 0, JSON.stringify(s.byServedBy));

    // The store beside nginx: every key written before and every write acknowledged during the run
    // reads back from the patched LC.
    assert.equal(report.stateful, true);
    assert.ok(report.load.ackedWrites.length > 0, 'writes were acknowledged during the run');
    assert.equal(
      report.dataChecked,
      200 + new Set(report.load.ackedWrites.map((w) => w.path)).size,
      'every key before and every acknowledged write is checked',
    );
    assert.deepEqual(report.dataLost, []);
    assert.equal(
      (report.run.facts.switchResult as { cut?: string } | undefined)?.cut,
      'writes',
      "the stateful switch cut by the store's writes (its cut protocol through nginx)",
    );
    assert.ok(
      report.verdict.lines.some((l) => /^met +acknowledged writes lost 0 of \d+/.test(l)),
      report.verdict.lines.join('\n'),
    );

    // nginx moved from the image's version (the main archive's) to the security archive's newest.
    const [newest] = await archiveVersions('nginx');
    assert.ok(newest && report.versionBefore && compareDebianVersions(newest, report.versionBefore) > 0);
    assert.equal(report.versionAfter, newest);
    const results = report.run.facts.patchResults ?? [];
    assert.deepEqual(
      results.map((r) => [r.deb?.package ?? r.name.split('_')[0], r.result, r.deb?.newVersion, r.deb?.tool]),
      [
        ['nginx', 'ok', newest, 'apt-get'],
        ['nginx-common', 'ok', newest, 'apt-get'],
      ],
    );

    // The verdict is the figures': every target line met, or named MISSED and the status is 1.
    assert.equal(
      report.verdict.ok,
      report.verdict.lines.every((l) => l.startsWith('met')),
    );
    assert.ok(report.verdict.lines.some((l) => /^(met|MISSED) +failed requests 0/.test(l)));
    assert.ok(report.verdict.lines.some((l) => /switch window: max added/.test(l)));
    assert.equal(result.exitCode, report.verdict.ok ? 0 : 1);

    // Nothing left: the state dir, the bridge, the client namespace, the containers.
    assert.ok(!fs.existsSync(report.stateDir), `${report.stateDir} is removed`);
    assert.ok(!fs.existsSync(`/sys/class/net/${report.bridge}`), `the bridge ${report.bridge} is gone`);
    assert.ok(!fs.existsSync(`/run/netns/${report.client}`), `the client namespace ${report.client} is gone`);
    assert.deepEqual(processesNaming(report.stateDir), []);
  },
);
