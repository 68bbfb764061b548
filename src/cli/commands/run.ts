/** `understudy run <lc>|list|show|resume`, `understudy rollback <run>`: the patch run (Fig. 7). */
import type { Command } from 'commander';
import { UnderstudyError, createLogger, requireRoot } from '../../core/index.ts';
import { openApp } from '../../app/index.ts';
import {
  getRun,
  listRuns,
  resumeRun,
  rollbackRun,
  startRun,
  type RunDeps,
  type RunEvent,
  type RunRecord,
} from '../../run/index.ts';
import { isSwitchMethod } from '../../switch/index.ts';
import { table, type CliContext } from '../context.ts';

const seconds = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`;

export function renderRun(run: RunRecord): string {
  const f = run.facts;
  const lines = [
    `run ${run.id}: ${run.state}${run.error ? ` — ${run.error.split('\n')[0]}` : ''}`,
    `LC ${run.lc} → standby ${run.standby ?? '(none yet)'}, method ${run.options.method}, patches ${run.options.patches.join(', ')}`,
    '',
    table(
      ['#', 'STEP', 'STATE', 'TIME', 'TRIES'],
      run.steps.map((s) => [String(s.seq + 1), s.name, s.state, seconds(s.durationMs), String(s.attempts)]),
    ),
  ];
  const total = run.steps.reduce((sum, s) => sum + (s.durationMs ?? 0), 0);
  lines.push(`total: ${seconds(total)}`);
  if (f.scan)
    lines.push(
      `scan: ${f.scan.skipped ? 'skipped' : `${f.scan.files} files, ${f.scan.infected.length} infected (${f.scan.database})`}`,
    );
  for (const copy of f.copies ?? [])
    lines.push(
      `copy ${copy.disk}: ${copy.summary}; frozen ${copy.freezeMs.toFixed(1)} ms (${copy.convergence})`,
    );
  for (const p of f.patchResults ?? []) lines.push(`patch ${p.name}: ${p.result} (exit ${p.exitCode})`);
  if (f.versionBefore || f.versionAfter)
    lines.push(`version: ${f.versionBefore ?? '?'} → ${f.versionAfter ?? '?'}`);
  const sw = f.switchResult as
    { method?: string; durationMs?: number; drainMs?: number; holdMs?: number; syncMs?: number } | undefined;
  if (sw)
    lines.push(
      `switch: ${sw.method} in ${seconds(sw.durationMs)} (drain ${seconds(sw.drainMs)}, hold ${seconds(sw.holdMs)}, final sync ${seconds(sw.syncMs)})`,
    );
  return lines.join('\n');
}

function progressPrinter(ctx: CliContext): (event: RunEvent) => void {
  let lastNote = 0;
  return (event) => {
    if (event.state === 'note') {
      // Copy progress arrives often: one line a second is enough for a person.
      if (Date.now() - lastNote < 1000 && event.step !== 'run') return;
      lastNote = Date.now();
      ctx.progress(`        ${event.step}: ${event.message ?? ''}`);
      return;
    }
    const time = event.durationMs === undefined ? '' : ` (${seconds(event.durationMs)})`;
    ctx.progress(
      `${event.state.padEnd(7)} ${event.step}${time}${event.message ? `: ${event.message.split('\n')[0]}` : ''}`,
    );
  };
}

async function withRunDeps<T>(ctx: CliContext, fn: (deps: RunDeps) => Promise<T>): Promise<T> {
  requireRoot('a patch run');
  const app = openApp(ctx.stateDir());
  try {
    const host = await app.host();
    const logger = createLogger({ pretty: false, level: process.env.UNDERSTUDY_LOG_LEVEL ?? 'warn' });
    return await fn({ db: app.db, host, catalogue: app.catalogue, logger, onEvent: progressPrinter(ctx) });
  } finally {
    app.close();
  }
}

export function registerRunCommands(program: Command, ctx: CliContext): void {
  const run = program.command('run').description('patch a running LC without stopping its service (Fig. 7)');

  run
    .argument('[lc]', 'the logical computer to patch')
    .option('--patches <names>', 'comma-separated patch names (default: those marked for the next run)')
    .option('--standby <lc>', 'the standby LC (default: the best fit)')
    .option('--method <method>', 'switch method: instant | move-nic | swap-address', 'instant')
    .option('--scan-database <path>', 'ClamAV signature database for the scan (step 702)')
    .option('--skip-scan', 'do not scan the system disk (recorded in the run)')
    .option('--boot-timeout <ms>', 'how long the standby may take to patch and boot', '120000')
    .option('--health-path <path>', 'HTTP path of the health check', '/health')
    .option('--port <port>', 'TCP port of the service', '80')
    .option('--stateless', 'the application disk holds no data to carry over at the switch')
    .option(
      '--watch <seconds>',
      'after the switch, watch the service this long and roll back by itself if it fails',
      '0',
    )
    .action(async (lc: string | undefined, o: Record<string, string | boolean | undefined>) => {
      if (!lc) {
        run.help();
        return;
      }
      if (!isSwitchMethod(String(o.method)))
        throw new UnderstudyError(
          'INVALID_ARGUMENT',
          `--method: "${String(o.method)}" is not one of instant, move-nic, swap-address`,
        );
      const record = await withRunDeps(ctx, (deps) =>
        startRun(
          {
            lc,
            patches:
              typeof o.patches === 'string'
                ? o.patches
                    .split(',')
                    .map((p) => p.trim())
                    .filter(Boolean)
                : undefined,
            standby: o.standby as string | undefined,
            method: o.method as 'instant',
            scanDatabase: o.scanDatabase as string | undefined,
            skipScan: o.skipScan === true,
            bootTimeoutMs: Number(o.bootTimeout),
            healthPath: o.healthPath as string,
            port: Number(o.port),
            stateful: o.stateless !== true,
            watchMs: Number(o.watch) * 1000,
          },
          deps,
        ),
      );
      ctx.print(record, () => renderRun(record));
    });

  run
    .command('list')
    .description('patch runs, newest first')
    .action(() => {
      const app = openApp(ctx.stateDir());
      try {
        const runs = listRuns(app.db);
        ctx.print(runs, () =>
          runs.length === 0
            ? 'no patch runs yet'
            : table(
                ['RUN', 'LC', 'STANDBY', 'STATE', 'METHOD', 'PATCHES', 'STARTED'],
                runs.map((r) => [
                  r.id,
                  r.lc,
                  r.standby ?? '-',
                  r.state,
                  r.options.method,
                  r.options.patches.join(','),
                  r.createdAt,
                ]),
              ),
        );
      } finally {
        app.close();
      }
    });

  run
    .command('show <run>')
    .description('steps, durations, copy history, patch results, switch figures')
    .action((id: string) => {
      const app = openApp(ctx.stateDir());
      try {
        const record = getRun(app.db, id);
        ctx.print(record, () => renderRun(record));
      } finally {
        app.close();
      }
    });

  run
    .command('resume <run>')
    .description('continue a run whose manager stopped (crash, kill, reboot)')
    .action(async (id: string) => {
      const record = await withRunDeps(ctx, (deps) => resumeRun(id, deps));
      ctx.print(record, () => renderRun(record));
    });

  program
    .command('rollback <run>')
    .description('move the service back to the original LC, with the data written since the switch')
    .action(async (id: string) => {
      const record = await withRunDeps(ctx, (deps) => rollbackRun(id, deps));
      ctx.print(record, () => renderRun(record));
    });
}
