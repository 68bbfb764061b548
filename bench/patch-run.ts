/**
 * Benchmark of the main job: the whole patch run (the demo) under >= 1,000 requests/s — wall time per
 * step and in total, failed requests, added latency in the switch window — and, in the same run, the
 * same patch applied in place (stop the service, patch, start it again) under the same load.
 * Run as root: `node --import tsx bench/patch-run.ts [--runs 3] [--rate 1000]`.
 */
import fs from 'node:fs';

import { parseArgs } from 'node:util';
import {
  createClientHost,
  makeVersionPatch,
  runDemo,
  startClientLoad,
  type DemoReport,
} from '../src/demo/index.ts';
import { getLc } from '../src/inventory/index.ts';
import { createTestHost, enableTestDrivers } from '../test/helpers/host-fixture.ts';

// The namespace driver (retired for operators) is the project's own fast test driver; this benchmark measures it.
enableTestDrivers();

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, rate: { type: 'string', default: '1000' } },
});
const runs = Number(values.runs);
const rate = Number(values.rate);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const reports: DemoReport[] = [];
for (let i = 0; i < runs; i++) {
  log(`patch run ${i + 1}/${runs} (the demo, ${rate} req/s)…`);
  reports.push(await runDemo({ driver: 'namespace', rate }));
}

// The baseline: the same patch applied in place under the same load.
log(`in place: stop the service, patch, start it again, under ${rate} req/s…`);
const t = await createTestHost();
const inPlace: { failed: number; refusedS: number; total: number; byOutcome: Record<string, number> }[] = [];
try {
  await t.lc({ name: 'lc1', addresses: [`${t.prefix}.10`], role: 'active' });
  const client = await createClientHost({ bridge: t.host.network.bridge, address: `${t.prefix}.200/24` });
  try {
    const patchFile = await makeVersionPatch({
      dir: t.stateDir,
      from: '1.0.0',
      to: '1.0.1',
      name: 'inplace',
    });
    for (let i = 0; i < runs; i++) {
      const lc = getLc(t.app.db, 'lc1');
      await t.host.driver.writeFile(lc, '/tmp/patch.diff', fs.readFileSync(patchFile));
      const load = await startClientLoad({
        netns: client.netns,
        url: `http://${t.prefix}.10/`,
        rate,
        maxDurationS: 60,
      });
      await new Promise((r) => setTimeout(r, 2000));
      await t.host.driver.exec('lc1', ['/etc/rc.d/S50demo', 'stop']);
      // Every other run applies it in reverse, so each run really changes the service.
      await t.host.driver.exec('lc1', [
        'sh',
        '-c',
        `cd / && patch -p1 ${i % 2 === 0 ? '-N' : '-R'} -i /tmp/patch.diff`,
      ]);
      await t.host.driver.exec('lc1', ['/etc/rc.d/S50demo', 'start']);
      await new Promise((r) => setTimeout(r, 2000));
      const report = await load.stop();
      const failedAt = report.records.filter((r) => r.outcome !== 'ok').map((r) => r.scheduledAt);
      inPlace.push({
        failed: report.summary.failed,
        refusedS: failedAt.length ? (Math.max(...failedAt) - Math.min(...failedAt)) / 1000 : 0,
        total: report.summary.total,
        byOutcome: report.summary.byOutcome,
      });
    }
  } finally {
    await client.dispose();
  }
} finally {
  await t.dispose();
}

const stepNames = reports[0]?.run.steps.map((s) => s.name) ?? [];
const lines: string[] = [];
lines.push(
  `Patch run under ${rate} requests/s, ${runs} runs (median; busybox image, standby disks on a second pool, method instant, stateful)\n`,
);
lines.push('| step | median s | max s |', '|---|---|---|');
for (const name of stepNames) {
  const times = reports.map((r) => (r.run.steps.find((s) => s.name === name)?.durationMs ?? 0) / 1000);
  lines.push(`| ${name} | ${median(times).toFixed(2)} | ${Math.max(...times).toFixed(2)} |`);
}
const totals = reports.map((r) => r.run.steps.reduce((s, x) => s + (x.durationMs ?? 0), 0) / 1000);
lines.push(
  `| **total (patch run)** | **${median(totals).toFixed(2)}** | ${Math.max(...totals).toFixed(2)} |`,
);
lines.push('');
lines.push(
  '| | requests | failed | delayed >= 1 s | max latency ms | switch window: added max ms | data lost |',
  '|---|---|---|---|---|---|---|',
);
reports.forEach((r, i) => {
  const s = r.load.summary;
  lines.push(
    `| understudy run ${i + 1} | ${s.total} | ${s.failed} | ${s.delayedOver1s} | ${s.latency.max.toFixed(0)} | ${r.load.markWindow?.addedMaxMs.toFixed(0) ?? '-'} | ${r.dataLost.length} |`,
  );
});
inPlace.forEach((r, i) => {
  lines.push(
    `| in place (stop, patch, restart) ${i + 1} | ${r.total} | ${r.failed} ${JSON.stringify(r.byOutcome)} | - | - | refused for ${r.refusedS.toFixed(2)} s | - |`,
  );
});
console.log(lines.join('\n'));
