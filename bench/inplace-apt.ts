/**
 * Benchmark: the same Debian security update of nginx done **in place** — `apt-get install` of the
 * security version inside a running LXC LC (Debian bookworm, systemd, unmodified nginx from the main
 * archive) — under load from a client namespace (≥ 1,000 req/s, half new connections, half keep-alive).
 * Reports per repeat and as the median over repeats: failed requests (resets, refusals, timeouts, HTTP
 * errors), the max latency added while apt ran (worst request in the apt window − worst steady request),
 * and apt's wall time. The .debs are real Debian packages fetched on the host with `apt-get download`
 * (cached) and copied into the LC, which needs no network.
 *
 * Each repeat then runs understudy's patch run of the same update under the same load on a fresh LC pair
 * (the .debs through a signed apt feed and `understudy updates --apply`), side by side, and the script
 * judges "understudy: 0 failed" (exit 1 when a run failed requests).
 *
 * Run as root: `node --import tsx bench/inplace-apt.ts [--repeats 3] [--rate 1000] [--steady-s 3]`
 * (npm run bench:inplace-apt).
 */
import path from 'node:path';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { waitFor } from '../src/core/index.ts';
import { startClientLoad, type ClientLoadReport } from '../src/demo/index.ts';
import { compareDebianVersions, parseDpkgStatus } from '../src/monitor/index.ts';
import { listLcs } from '../src/inventory/index.ts';
import { startRun, type RunRecord } from '../src/run/index.ts';
import { createLxcBed, type LxcBed } from '../test/e2e/lxc/lxc-fixture.ts';
import { createNginxRunBed } from '../test/e2e/lxc/nginx-run-bed.ts';
import { AptRepo } from '../test/e2e/monitor/apt-repo.ts';
import { startHttpServer, type TestHttpServer } from '../test/e2e/monitor/fixtures.ts';
import { archiveVersions, realDebs } from '../test/e2e/updates/real-debs.ts';

const { values } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    rate: { type: 'string', default: '1000' },
    'steady-s': { type: 'string', default: '3' },
  },
});
const repeats = Number(values.repeats);
const rate = Number(values.rate);
const steadyMs = Number(values['steady-s']) * 1000;
const command = `node --import tsx bench/inplace-apt.ts --repeats ${repeats} --rate ${rate} --steady-s ${steadyMs / 1000}`;

export interface SideResult {
  total: number;
  failed: number;
  byOutcome: ClientLoadReport['summary']['byOutcome'];
  /** Worst request scheduled while the update ran minus the worst steady one (ms). */
  addedMaxMs: number;
  /** The update itself (ms): apt-get install in place. */
  wallMs: number;
  achievedRate: number;
  before: string;
  after: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function nginxVersion(bed: LxcBed, lc: string): Promise<string> {
  const out = await bed.driver.exec(lc, ['dpkg-query', '-W', '-f', '${Version}', 'nginx']);
  return out.stdout.trim();
}

/** One in-place update under load on a fresh LC; the LC is destroyed afterwards. */
async function inPlaceOnce(bed: LxcBed, i: number, debs: readonly string[]): Promise<SideResult> {
  const octet = 40 + i;
  const spec = bed.spec(`inplace${i}`, octet);
  const url = `http://${bed.t.prefix}.${octet}/`;
  await bed.driver.create(spec);
  try {
    await bed.driver.start(spec);
    const up = await waitFor(async () => ((await bed.client.get(url)).status === 200 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    if (up !== true) throw new Error(`${spec.name}: nginx did not answer within 60 s`);
    const before = await nginxVersion(bed, spec.name);
    const inside: string[] = [];
    for (const deb of debs) {
      const target = `/root/updates/${path.basename(deb)}`;
      await bed.driver.writeFile(spec, target, fs.readFileSync(deb));
      inside.push(target);
    }
    const load = await startClientLoad({
      netns: bed.client.netns,
      url,
      rate,
      maxDurationS: 300,
      mix: 'newconn=0.5,keepalive=0.5',
    });
    let report: ClientLoadReport;
    let wallMs: number;
    try {
      await sleep(steadyMs);
      load.mark('apt-start');
      const t0 = performance.now();
      await bed.driver.exec(
        spec.name,
        [
          'env',
          'DEBIAN_FRONTEND=noninteractive',
          'apt-get',
          'install',
          '-y',
          // No --no-download: apt takes local .deb paths as relative with it. The LC has no route out;
          // every dependency is installed already, so apt has nothing to fetch.
          '-o',
          'Dpkg::Options::=--force-confold',
          ...inside,
        ],
        { timeoutMs: 300_000 },
      );
      wallMs = performance.now() - t0;
      load.mark('apt-end');
      await sleep(steadyMs);
    } finally {
      report = await load.stop();
    }
    const after = await nginxVersion(bed, spec.name);
    return {
      total: report.summary.total,
      failed: report.summary.failed,
      byOutcome: report.summary.byOutcome,
      addedMaxMs: report.markWindow?.addedMaxMs ?? NaN,
      wallMs,
      achievedRate: report.summary.achievedRate,
      before,
      after,
    };
  } finally {
    await bed.driver.stop(spec.name, { timeoutMs: 10_000 }).catch((e: unknown) => console.error(e));
    await bed.driver.destroy(spec).catch((e: unknown) => console.error(e));
  }
}

/** One understudy patch run of the same update under the same load on a fresh pair of LCs (lc1 active, lc2 standby). */
async function understudyOnce(debs: readonly string[]): Promise<SideResult> {
  const bed = await createNginxRunBed();
  const repo = await new AptRepo('bookworm-security').init();
  let server: TestHttpServer | undefined;
  try {
    // The update reaches the catalogue the product's way: a signed apt feed, `understudy updates --apply`.
    for (const deb of debs) repo.addDebFile(deb);
    await repo.publish();
    server = await startHttpServer(repo.root);
    await bed.t.cli([
      'feed',
      'add',
      'sec',
      '--kind',
      'apt',
      '--url',
      server.url,
      '--suite',
      'bookworm-security',
      '--component',
      'main',
      '--arch',
      'amd64',
      '--keyring',
      repo.keyring,
      '--fingerprint',
      repo.fingerprint,
    ]);
    await bed.t.cli(['updates', 'lc1', '--apply']);
    const version = async (lc: string): Promise<string> =>
      (await bed.t.host.driver.exec(lc, ['dpkg-query', '-W', '-f', '${Version}', 'nginx'])).stdout.trim();
    const before = await version('lc1');
    const load = await startClientLoad({
      netns: bed.client.netns,
      url: `http://${bed.t.prefix}.10/`,
      rate,
      maxDurationS: 600,
      mix: 'newconn=0.5,keepalive=0.5',
    });
    let report: ClientLoadReport;
    let wallMs: number;
    let run: RunRecord;
    try {
      await sleep(steadyMs);
      load.mark('run-start');
      const t0 = performance.now();
      run = await startRun(
        { lc: 'lc1', skipScan: true, bootTimeoutMs: 240_000 },
        { db: bed.t.app.db, host: bed.t.host, catalogue: bed.catalogue },
      );
      wallMs = performance.now() - t0;
      load.mark('run-end');
      await sleep(steadyMs);
    } finally {
      report = await load.stop();
    }
    if (run.state !== 'switched') throw new Error(`the patch run ended ${run.state}`);
    const active = listLcs(bed.t.app.db).find((l) => l.role === 'active')?.name ?? 'lc2';
    return {
      total: report.summary.total,
      failed: report.summary.failed,
      byOutcome: report.summary.byOutcome,
      addedMaxMs: report.markWindow?.addedMaxMs ?? NaN,
      wallMs,
      achievedRate: report.summary.achievedRate,
      before,
      after: await version(active),
    };
  } finally {
    await server?.close();
    repo.cleanup();
    await bed.dispose();
  }
}

function line(label: string, r: SideResult): string {
  const o = r.byOutcome;
  return `  ${label}: ${r.failed} failed of ${r.total} (reset ${o.reset}, refused ${o.refused}, timeout ${o.timeout}, http-error ${o['http-error']}); max added latency ${r.addedMaxMs.toFixed(0)} ms; update ${(r.wallMs / 1000).toFixed(1)} s; ${r.achievedRate.toFixed(0)} req/s; nginx ${r.before} -> ${r.after}`;
}

const bed = await createLxcBed();
try {
  // The image's nginx, read from a created (never started) LC's system disk.
  const probe = bed.spec('probe', 39);
  await bed.driver.create(probe);
  const image = parseDpkgStatus(await bed.driver.readFile(probe, '/var/lib/dpkg/status'), 'image');
  const installed = image.find((p) => p.name === 'nginx')?.version ?? '';
  const security = (await archiveVersions('nginx')).find((v) => compareDebianVersions(v, installed) > 0);
  if (!security) throw new Error(`no nginx newer than ${installed} in the host's archives`);
  const debs = await realDebs([`nginx=${security}`, `nginx-common=${security}`]);
  const inPlace: SideResult[] = [];
  const understudy: SideResult[] = [];
  for (let i = 0; i < repeats; i++) {
    const r = await inPlaceOnce(bed, i, debs);
    console.log(line(`in place,   run ${i + 1}`, r));
    if (r.after !== security) throw new Error(`run ${i + 1}: nginx is ${r.after} after apt, not ${security}`);
    inPlace.push(r);
    const u = await understudyOnce(debs);
    console.log(line(`understudy, run ${i + 1}`, u));
    if (u.after !== security)
      throw new Error(`run ${i + 1}: nginx is ${u.after} after the run, not ${security}`);
    understudy.push(u);
  }
  const summary = (label: string, runs: SideResult[]): string =>
    `  ${label}: failed ${median(runs.map((r) => r.failed))} of ${median(runs.map((r) => r.total))} (runs: ${runs.map((r) => r.failed).join(', ')}), max added latency ${median(runs.map((r) => r.addedMaxMs)).toFixed(0)} ms, wall ${(median(runs.map((r) => r.wallMs)) / 1000).toFixed(1)} s`;
  console.log(`\n$ ${command}`);
  console.log(
    `nginx ${installed} (bookworm main) -> ${security} (security) under ${rate} req/s, half keep-alive; median of ${repeats}`,
  );
  console.log(summary('in place (apt-get install inside the LC)', inPlace));
  console.log(
    summary('understudy (patch run: standby, one apt transaction, reboot, check, switch)', understudy),
  );
  const worst = Math.max(...understudy.map((r) => r.failed));
  console.log(
    `  understudy: ${worst === 0 ? '0 failed in every run — MET' : `${worst} failed in a run — MISSED (target 0)`}`,
  );
  process.exitCode = worst === 0 ? 0 : 1;
} finally {
  await bed.dispose();
}
