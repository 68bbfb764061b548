/** `understudy run <lc>|list|show|resume`, `understudy rollback <run>`: the patch run (Fig. 7). */
import type { Command } from 'commander';
import { UnderstudyError, createLogger, requireRoot } from '../../core/index.ts';
import { type App } from '../../app/index.ts';
import { runEventRecorder } from '../../api/index.ts';
import { EventLog, eventsSchema, type StoredEvent } from '../../events/index.ts';
import { ensureSchemas } from '../../store/index.ts';
import { sleep } from '../../core/index.ts';
import { createProgressDisplay, type ProgressEvent } from '../progress.ts';
import type { ApiClient, StreamEvent } from '../api-client.ts';
import {
  getRun,
  listRuns,
  resumeRun,
  rollbackRun,
  startRun,
  treeChecksSettled,
  treeMismatchOf,
  type RunDeps,
  type RunRecord,
} from '../../run/index.ts';
import { describePhases, isSwitchMethod, type SwitchMethod } from '../../switch/index.ts';
import { table, type CliContext } from '../context.ts';

const seconds = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`;

export function renderRun(run: RunRecord): string {
  const f = run.facts;
  const mismatch = treeMismatchOf(run);
  const lines = [
    `run ${run.id}: ${run.state}${mismatch ? ' — DATA MISMATCH after the switch (verify.tree)' : ''}${run.error ? ` — ${run.error.split('\n')[0]}` : ''}`,
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
      `copy ${copy.disk}${copy.to && copy.to !== copy.disk ? ` → ${copy.to}` : ''}: ${copy.summary}; frozen ${copy.freezeMs.toFixed(1)} ms (${copy.convergence})`,
    );
  for (const p of f.patchResults ?? []) {
    const deb = p.deb
      ? ` — ${p.deb.package} ${p.deb.oldVersion || '(none)'} → ${p.deb.newVersion || '(none)'} by ${p.deb.tool}${p.deb.conffilesKept.length > 0 ? `, kept ${p.deb.conffilesKept.join(', ')}` : ''}`
      : '';
    lines.push(`patch ${p.name}: ${p.result} (exit ${p.exitCode})${deb}`);
  }
  if (f.restartNeeds && (f.restartNeeds.processes.length > 0 || f.restartNeeds.rebootRequired))
    lines.push(
      `restart: ${f.restartNeeds.processes.map((r) => `${r.command}[${r.pid}]`).join(', ') || '-'} mapped replaced files${f.restartNeeds.rebootRequired ? '; reboot required' : ''} (the standby was rebooted)`,
    );
  if (f.versionBefore || f.versionAfter)
    lines.push(`version: ${f.versionBefore ?? '?'} → ${f.versionAfter ?? '?'}`);
  const sw = f.switchResult;
  if (sw)
    lines.push(
      `switch: ${sw.method} in ${seconds(sw.durationMs)} (drain ${seconds(sw.drainMs)}, hold ${seconds(sw.holdMs)}, final sync ${seconds(sw.syncMs)})`,
    );
  const phases = sw ? describePhases(sw) : undefined;
  if (phases) lines.push(`switch phases: ${phases}`);
  for (const [step, check] of Object.entries(f.treeChecks ?? {}))
    lines.push(
      `verify.tree after ${step}: ${check.state === 'mismatch' ? 'MISMATCH' : check.state} — ${check.detail}${check.state === 'running' ? ` (by ${check.owner}, since ${check.at})` : ''}`,
    );
  if (f.watchOutcome && f.watchOutcome !== 'skipped')
    lines.push(`watch: ${f.watchOutcome} — ${f.watchDetail ?? ''}`);
  else if (f.watchUntil) lines.push(`watch: until ${f.watchUntil}`);
  return lines.join('\n');
}

/** The progress display of a run: live on a terminal, plain lines otherwise, NDJSON with --json --follow. */
function runDisplay(ctx: CliContext, follow: boolean): (event: ProgressEvent) => void {
  if (ctx.json() && !follow) return () => undefined;
  return createProgressDisplay({
    json: ctx.json(),
    tty: process.stderr.isTTY === true,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  });
}

const finalStates = new Set(['switched', 'failed', 'rolled-back', 'cancelled']);

/** A stored event of a run as the progress display takes it. */
function progressOf(e: StreamEvent | StoredEvent): ProgressEvent | null {
  const d = e.data as {
    step?: string;
    state?: string;
    message?: string;
    durationMs?: number;
    progress?: ProgressEvent['progress'];
  };
  if (e.type === 'run.step')
    return {
      runId: e.runId ?? '',
      step: d.step ?? '',
      state: d.state ?? '',
      message: d.message,
      durationMs: d.durationMs,
    };
  if (e.type === 'run.note')
    return {
      runId: e.runId ?? '',
      step: d.step ?? '',
      state: 'note',
      message: d.message,
      progress: d.progress,
    };
  if (e.type === 'run.state')
    return { runId: e.runId ?? '', step: 'run', state: 'note', message: `run ${d.state ?? ''}` };
  if (e.type === 'health' && e.runId) {
    const h = e.data as { phase?: string; lc?: string; ok?: boolean; detail?: string };
    return {
      runId: e.runId,
      step: d.step ?? 'health',
      state: 'note',
      message: `health ${h.phase ?? ''} on ${h.lc ?? '?'}: ${h.ok ? 'ok' : 'failed'} (${h.detail ?? ''})`,
    };
  }
  return null;
}

/** Follows a run's events through the API until the run ends; returns its final record. */
async function followOverApi(
  api: ApiClient,
  id: string,
  show: (event: ProgressEvent) => void,
): Promise<RunRecord> {
  await api.follow({ run: id, after: 0 }, (event) => {
    const p = progressOf(event);
    if (p) show(p);
    return event.type === 'run.state' && finalStates.has(String(event.data.state));
  });
  return (await api.request<{ run: RunRecord }>('GET', `/v1/runs/${id}`)).run;
}

/** Follows a run in the local store (driven by another process) until it ends. */
async function followLocal(
  ctx: CliContext,
  id: string,
  show: (event: ProgressEvent) => void,
): Promise<RunRecord> {
  const manager = ctx.openApp();
  try {
    ensureSchemas(manager.db, [eventsSchema]);
    const log = new EventLog(manager.db);
    let last = 0;
    for (;;) {
      for (const e of log.after(last, { runId: id })) {
        last = e.id;
        const p = progressOf(e);
        if (p) show(p);
      }
      const run = getRun(manager.db, id);
      if (finalStates.has(run.state) && run.ownerPid !== null && !isAlive(run.ownerPid)) return run;
      if (finalStates.has(run.state) && log.after(last, { runId: id }).length === 0) return run;
      await sleep(250);
    }
  } finally {
    manager.close();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Drives a run in this process. Its events go to the display and to the store's event log, so a
 * running `serve` (its console and `/v1/events`) sees runs started from the CLI too.
 */
async function withRunDeps(
  ctx: CliContext,
  follow: boolean,
  fn: (deps: RunDeps) => Promise<RunRecord>,
): Promise<RunRecord> {
  requireRoot('a patch run');
  const manager = ctx.openApp();
  try {
    ensureSchemas(manager.db, [eventsSchema]);
    const log = new EventLog(manager.db);
    const record = runEventRecorder(log);
    const show = runDisplay(ctx, follow);
    const catalogue = manager.catalogue;
    const logger = createLogger({ pretty: false, level: process.env.UNDERSTUDY_LOG_LEVEL ?? 'warn' });
    const host = await manager.start({ logger, onEvent: (event) => record(event) });
    let runId: string | null = null;
    try {
      const run = await fn({
        db: manager.db,
        host,
        catalogue,
        logger,
        onEvent: (event) => {
          runId = event.runId;
          record(event);
          show(event);
        },
      });
      // The whole-tree check of a stateful switch goes on after the run's last step; its outcome
      // comes before the run's final state, which ends what a follower reads.
      await treeChecksSettled();
      const ended = getRun(manager.db, run.id);
      const mismatch = treeMismatchOf(ended);
      log.append({
        runId: run.id,
        lc: run.lc,
        type: 'run.state',
        data: { state: ended.state, ...(mismatch ? { treeCheck: 'mismatch', mismatch } : {}) },
      });
      return ended;
    } catch (error) {
      if (runId !== null) {
        const run = getRun(manager.db, runId);
        log.append({
          runId,
          lc: run.lc,
          type: 'run.state',
          data: { state: run.state, error: (error as Error).message },
        });
      }
      throw error;
    }
  } finally {
    // A check still running after a failure records its outcome before the store closes.
    await treeChecksSettled();
    manager.close();
  }
}

/**
 * The run's final record: rendered for a person, JSON (one line after the events with --follow).
 * Throws RUN_DATA_MISMATCH (the command fails) when the whole-tree check of the switch that put the
 * service where it is found its data different from the old LC's at the cut. With --json and no
 * --follow the error carries the record (`details.run`) instead, so that stdout stays one document.
 */
function printResult(ctx: CliContext, record: RunRecord, follow: boolean): void {
  const mismatch = treeMismatchOf(record);
  const inError = mismatch !== undefined && ctx.json() && !follow;
  if (ctx.json() && follow) process.stdout.write(`${JSON.stringify({ result: record })}\n`);
  else if (!inError) ctx.print(record, () => renderRun(record));
  if (mismatch)
    throw new UnderstudyError(
      'RUN_DATA_MISMATCH',
      `Run ${record.id} is ${record.state}, but the data now served differs from the old LC's at the cut: ${mismatch}`,
      {
        hint:
          record.state === 'rolled-back'
            ? `The switch back found it: the service is on ${record.lc} again, and there is nothing further back to roll to. Compare the paths named on both LCs; \`understudy run show ${record.id}\` shows each check.`
            : `Nothing was rolled back (the run has no watch). Compare the paths named on both LCs; \`understudy rollback ${record.id}\` moves the service back with the data written since the switch.`,
        details: { runId: record.id, state: record.state, ...(inError ? { run: record } : {}) },
      },
    );
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
    .option('--stateless', 'the application disk holds no data to carry over at the switch')
    .option(
      '--watch <seconds>',
      'after the switch, watch the service this long and roll back by itself if it fails',
      '0',
    )
    .option('--follow', 'show every event of the run as it happens (with --json: one JSON object per event)')
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
      const options = {
        lc,
        patches:
          typeof o.patches === 'string'
            ? o.patches
                .split(',')
                .map((p) => p.trim())
                .filter(Boolean)
            : undefined,
        standby: o.standby as string | undefined,
        method: o.method as SwitchMethod,
        scanDatabase: o.scanDatabase as string | undefined,
        skipScan: o.skipScan === true,
        bootTimeoutMs: Number(o.bootTimeout),
        stateful: o.stateless !== true,
        watchMs: Number(o.watch) * 1000,
      };
      const follow = o.follow === true;
      const api = ctx.api();
      const record = api
        ? await (async () => {
            const started = (await api.request<{ run: RunRecord }>('POST', '/v1/runs', options)).run;
            ctx.progress(`run ${started.id} started by ${api.url}`);
            return followOverApi(api, started.id, runDisplay(ctx, follow));
          })()
        : await withRunDeps(ctx, follow, (deps) => startRun(options, deps));
      printResult(ctx, record, follow);
    });

  run
    .command('follow <run>')
    .description('show the events of a run driven elsewhere (serve, another CLI) until it ends')
    .action(async (id: string) => {
      const api = ctx.api();
      const show = runDisplay(ctx, true);
      const record = api ? await followOverApi(api, id, show) : await followLocal(ctx, id, show);
      printResult(ctx, record, true);
    });

  run
    .command('list')
    .description('patch runs, newest first')
    .action(async () => {
      const api = ctx.api();
      const manager = api ? null : ctx.openApp();
      try {
        const runs = api
          ? (await api.request<{ runs: RunRecord[] }>('GET', '/v1/runs')).runs
          : listRuns((manager as App).db);
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
        manager?.close();
      }
    });

  run
    .command('show <run>')
    .description('steps, durations, copy history, patch results, switch figures')
    .action(async (id: string) => {
      const api = ctx.api();
      if (api) {
        const record = (await api.request<{ run: RunRecord }>('GET', `/v1/runs/${encodeURIComponent(id)}`))
          .run;
        ctx.print(record, () => renderRun(record));
        return;
      }
      const manager = ctx.openApp();
      try {
        const record = getRun(manager.db, id);
        ctx.print(record, () => renderRun(record));
      } finally {
        manager.close();
      }
    });

  run
    .command('resume <run>')
    .description('continue a run whose manager stopped (crash, kill, reboot)')
    .option('--follow', 'show every event as it happens')
    .action(async (id: string, o: { follow?: boolean }) => {
      const api = ctx.api();
      const record = api
        ? (await api.request('POST', `/v1/runs/${encodeURIComponent(id)}/resume`, {}),
          await followOverApi(api, id, runDisplay(ctx, o.follow === true)))
        : await withRunDeps(ctx, o.follow === true, (deps) => resumeRun(id, deps));
      printResult(ctx, record, o.follow === true);
    });

  run
    .command('cancel <run>')
    .description('cancel a run before its switch (needs --api: the daemon driving it cancels it)')
    .action(async (id: string) => {
      const api = ctx.api();
      if (!api)
        throw new UnderstudyError(
          'INVALID_ARGUMENT',
          'run cancel needs --api: only the process driving a run can cancel it',
          {
            hint: 'Pass --api http://127.0.0.1:8642 (serve), or stop a CLI-driven run with Ctrl-C and resume or let it fail.',
          },
        );
      const record = (
        await api.request<{ run: RunRecord }>('POST', `/v1/runs/${encodeURIComponent(id)}/cancel`, {})
      ).run;
      ctx.print(
        record,
        () =>
          `run ${id}: cancelling (the running step is stopped, the standby discarded; the service stays on ${record.lc})`,
      );
    });

  program
    .command('rollback <run>')
    .description('move the service back to the original LC, with the data written since the switch')
    .option('--follow', 'show every event as it happens')
    .action(async (id: string, o: { follow?: boolean }) => {
      const api = ctx.api();
      const record = api
        ? (await api.request('POST', `/v1/runs/${encodeURIComponent(id)}/rollback`, {}),
          await followOverApi(api, id, runDisplay(ctx, o.follow === true)))
        : await withRunDeps(ctx, o.follow === true, (deps) => rollbackRun(id, deps));
      printResult(ctx, record, o.follow === true);
    });
}
