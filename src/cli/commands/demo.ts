/** `understudy demo`: the main job — a zero-downtime patch of a running LC under load, with a report. */
import type { Command } from 'commander';
import { UnderstudyError, requireRoot } from '../../core/index.ts';
import { judgeDemo, runDemo, type DemoReport } from '../../demo/index.ts';
import { isSwitchMethod } from '../../switch/index.ts';
import type { CliContext } from '../context.ts';
import { renderRun } from './run.ts';

const ms = (v: number): string => `${v.toFixed(1)} ms`;

export function renderDemo(r: DemoReport): string {
  const s = r.load.summary;
  const served = Object.entries(s.byServedBy)
    .map(([lc, n]) => `${lc} ${n}`)
    .join(', ');
  const verdict = judgeDemo(r);
  const versions = Object.entries(s.byVersion)
    .map(([v, n]) => `${v} ${n}`)
    .join(', ');
  return [
    '',
    '=== understudy demo: a zero-downtime patch ===',
    `service:    ${r.service}`,
    `patch:      ${r.patch}`,
    renderRun(r.run),
    '',
    `requests:   ${s.total} sent at ${s.achievedRate.toFixed(0)}/s, ${s.total - s.failed} ok, ${s.failed} failed ${JSON.stringify(s.byOutcome)}`,
    `served by:  ${served}`,
    versions ? `versions:   ${versions}` : '',
    `latency:    p50 ${ms(s.latency.p50)}, p99 ${ms(s.latency.p99)}, max ${ms(s.latency.max)}; ${s.delayedOver1s} delayed >= 1 s`,
    `switch window: ${verdict.windowRequests} requests scheduled while the switch ran, worst ${ms(verdict.windowMaxMs)}, ${verdict.windowDelayedOver1s} delayed >= 1 s (baseline p99 before the run ${ms(verdict.steadyP99Ms)})`,
    `version:    ${r.versionBefore ?? '?'} before → ${r.versionAfter ?? '?'} after`,
    r.stateful
      ? `data:       ${r.dataChecked} keys checked (200 written before, ${r.load.ackedWrites.length} acknowledged during the run), ${r.dataLost.length} lost`
      : 'data:       none written (the site is static; no data check)',
    `wall time:  ${(r.wallMs / 1000).toFixed(1)} s (host setup, image, LCs, data, load, patch run, checks)`,
    'targets:',
    ...verdict.lines.map((l) => `  ${l}`),
    verdict.ok
      ? `RESULT: ok — patched with 0 failed requests${r.stateful ? ', no data lost' : ''}, and every switch figure within its target`
      : `RESULT: NOT MET — ${verdict.lines.filter((l) => l.startsWith('MISSED')).length} target(s) missed (above)`,
  ]
    .filter((l) => l !== '')
    .join('\n');
}

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('set up a throwaway host and patch a running LC under load, with zero failed requests')
    .option(
      '--driver <driver>',
      'lxc: Debian nginx and a key-value store in an unprivileged LXC container, patched from the security archive; namespace: the busybox demo service (retired for operators, tests of the project only: not isolated like LXC)',
      'lxc',
    )
    .option('--method <method>', 'switch method: instant | move-nic | swap-address', 'instant')
    .option('--rate <n>', 'client requests per second', '1000')
    .option('--keep', 'keep the demo host (LCs, pools, bridge) instead of tearing it down')
    .action(async (o: { driver: string; method: string; rate: string; keep?: boolean }) => {
      requireRoot('the demo');
      if (o.driver !== 'lxc' && o.driver !== 'namespace')
        throw new UnderstudyError('INVALID_ARGUMENT', `--driver: "${o.driver}" is not one of lxc, namespace`);
      if (!isSwitchMethod(o.method))
        throw new UnderstudyError(
          'INVALID_ARGUMENT',
          `--method: "${o.method}" is not one of instant, move-nic, swap-address`,
        );
      const report = await runDemo({
        driver: o.driver,
        method: o.method,
        rate: Number(o.rate),
        keep: o.keep,
        progress: (line) => ctx.progress(line),
      });
      const { records: _records, ...load } = report.load;
      ctx.print({ ...report, load, verdict: judgeDemo(report) }, () => renderDemo(report));
      if (!judgeDemo(report).ok) process.exitCode = 1;
    });
}
