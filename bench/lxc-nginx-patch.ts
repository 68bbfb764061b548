/**
 * Benchmark: the patch run of real Debian nginx on LXC under load. Two LXC LCs from the bookworm image
 * with unmodified nginx (bookworm main); a load from a client namespace at --rate requests/s (default
 * 1000), half new connections, half keep-alive; the run upgrades nginx + nginx-common to the version of
 * the host's archives (apt-get download; the security archive's) as one apt transaction on the standby,
 * reboots and checks it, and switches (instant). Reports per run: failed requests (by outcome), the
 * latency of the 5 s before the run (baseline), the max latency during the run and the max added
 * latency (the run window's max − the steady state's max, 5 s before and after, as bench/inplace-apt.ts
 * measures it), and the run's wall time with its steps. A fresh bed per run.
 *
 * Run as root: `node --import tsx bench/lxc-nginx-patch.ts [--runs N] [--rate R]`.
 */
import { parseArgs } from 'node:util';
import { startClientLoad } from '../src/demo/index.ts';
import { startRun, type RunRecord } from '../src/run/index.ts';
import { securityUpdate } from '../test/e2e/lxc/debs.ts';
import { createNginxRunBed, nginxSet } from '../test/e2e/lxc/nginx-run-bed.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    rate: { type: 'string', default: '1000' },
    baseline: { type: 'string', default: '5' },
  },
});
const runs = Number(values.runs);
const rate = Number(values.rate);
const baselineS = Number(values.baseline);
const command = `node --import tsx bench/lxc-nginx-patch.ts --runs ${runs} --rate ${rate}`;

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number);
};

interface Row {
  run: number;
  state: string;
  from: string;
  to: string;
  requests: number;
  failed: number;
  byOutcome: Record<string, number>;
  servedBy: Record<string, number>;
  achievedRate: number;
  baselineP50: number;
  baselineMax: number;
  runMax: number;
  runP99: number;
  addedMax: number;
  wallS: number;
  steps: Record<string, number>;
}

const rows: Row[] = [];
for (let i = 1; i <= runs; i++) {
  const bed = await createNginxRunBed();
  try {
    const installed = (await bed.t.host.driver.exec('lc1', ['dpkg-query', '-W', '-f', '${Version}', 'nginx']))
      .stdout;
    const update = await securityUpdate(nginxSet, installed);
    for (const [n, file] of update.files.entries()) {
      const name = nginxSet[n] ?? '';
      await bed.t.cli(['patch', 'add', file, '--name', name, '--format', 'deb', '--category', 'security']);
      await bed.t.cli(['patch', 'mark', name, '--lc', 'lc1', '--next-run', 'on']);
    }
    const load = await startClientLoad({
      netns: bed.client.netns,
      url: `http://${bed.t.prefix}.10/`,
      rate,
      maxDurationS: 600,
      mix: 'newconn=0.5,keepalive=0.5',
    });
    await new Promise((r) => setTimeout(r, baselineS * 1000));
    const runStarted = Date.now();
    load.mark('run-start');
    let run: RunRecord | undefined;
    let error: unknown;
    try {
      run = await startRun(
        { lc: 'lc1', skipScan: true, bootTimeoutMs: 240_000 },
        { db: bed.t.app.db, host: bed.t.host, catalogue: bed.catalogue },
      );
    } catch (e) {
      error = e;
    }
    const runEnded = Date.now();
    load.mark('run-end');
    await new Promise((r) => setTimeout(r, baselineS * 1000));
    const report = await load.stop();
    const ok = report.records.filter((r) => r.outcome === 'ok');
    const baseline = ok
      .filter((r) => r.scheduledAt >= runStarted - baselineS * 1000 && r.scheduledAt < runStarted)
      .map((r) => r.latencyMs);
    const during = report.records
      .filter((r) => r.scheduledAt >= runStarted && r.scheduledAt <= runEnded)
      .map((r) => r.latencyMs);
    const baselineP50 = percentile(baseline, 50);
    const runMax = Math.max(0, ...during);
    rows.push({
      run: i,
      state: run?.state ?? `error: ${error instanceof Error ? error.message : String(error)}`,
      from: update.from,
      to: update.to + (update.repacked ? ' (repacked)' : ''),
      requests: report.summary.total,
      failed: report.summary.failed,
      byOutcome: Object.fromEntries(Object.entries(report.summary.byOutcome).filter(([, n]) => n > 0)),
      servedBy: report.summary.byServedBy,
      achievedRate: Math.round(report.summary.achievedRate),
      baselineP50: Math.round(baselineP50 * 10) / 10,
      baselineMax: Math.round(Math.max(0, ...baseline) * 10) / 10,
      runMax: Math.round(runMax),
      runP99: Math.round(percentile(during, 99)),
      // As bench/inplace-apt.ts: the run window's max against the steady state's max (loadgen markWindow).
      addedMax: Math.round(report.markWindow?.addedMaxMs ?? runMax - baselineP50),
      wallS: Math.round((runEnded - runStarted) / 100) / 10,
      steps: Object.fromEntries(
        (run?.steps ?? []).map((s) => [s.name, Math.round((s.durationMs ?? 0) / 10) / 100]),
      ),
    });
    console.error(JSON.stringify(rows.at(-1)));
  } finally {
    await bed.dispose();
  }
}

const lines = [
  `Real-nginx patch run on LXC under ${rate} requests/s (half keep-alive), ${runs} run(s): \`${command}\``,
  '',
  '| run | nginx | state | requests | failed | baseline p50 / max ms | run max / p99 ms | max added ms | wall s |',
  '| --- | ----- | ----- | -------- | ------ | --------------------- | ---------------- | ------------ | ------ |',
  ...rows.map(
    (r) =>
      `| ${r.run} | ${r.from} → ${r.to} | ${r.state} | ${r.requests} (${r.achievedRate}/s) | ${r.failed} ${JSON.stringify(r.byOutcome)} | ${r.baselineP50} / ${r.baselineMax} | ${r.runMax} / ${r.runP99} | ${r.addedMax} | ${r.wallS} |`,
  ),
  '',
  'steps (s): ' + rows.map((r) => JSON.stringify(r.steps)).join('; '),
];
console.log(lines.join('\n'));
// The issue's target: every run switches with 0 failed requests.
const met = rows.length === runs && rows.every((r) => r.state === 'switched' && r.failed === 0);
console.log(
  `target: 0 failed requests and a switch in every run: ${rows.map((r) => `${r.failed} (${r.state})`).join(', ')} — ${met ? 'MET' : 'MISSED'}`,
);
process.exitCode = met ? 0 : 1;
