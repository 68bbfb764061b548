/**
 * `understudy switch <from> <to> --method …`: moves the service from one LC to another (seed Fig.
 * 13–17, 21–26); `understudy switches [id]` shows the switch journal.
 *
 * Binding LC names to switch sides needs the inventory and the driver; it is injected as a
 * `SwitchBinder` so this file imports neither (the composition root provides it; see docs/switch.md).
 */
import type { Command } from 'commander';
import { UnderstudyError, errorCatalogue, isUnderstudyError, type ErrorCode } from '../../core/index.ts';
import { type App } from '../../app/index.ts';
import {
  SwitchJournal,
  parseSwitchMethod,
  runSwitch,
  stepRecords,
  type HealthReport,
  type SwitchBinding,
  type SwitchDeps,
  type SwitchPlanInput,
  type SwitchRecord,
  type SwitchRequest,
  type SwitchResult,
} from '../../switch/index.ts';
import { table, type CliContext } from '../context.ts';
import { EventLog, eventsSchema } from '../../events/index.ts';
import type { TreeCheckResult } from '../../disk-copy/index.ts';
import { ensureSchemas } from '../../store/index.ts';
import { createProgressDisplay, type ProgressEvent } from '../progress.ts';
import type { ApiClient } from '../api-client.ts';

export type { SwitchRequest };

/** Resolves LC names into a complete plan and the sides that carry it out. */
export type SwitchBinder = (
  request: SwitchRequest,
  app: App,
) => Promise<{
  plan: SwitchPlanInput;
  binding: SwitchBinding & Pick<SwitchDeps, 'afterStep'>;
  after?: () => Promise<void>;
  /** Stateful: the whole-tree check of the data disks, run once the switch is done and reported. */
  verify?: () => Promise<TreeCheckResult[]>;
}>;

const unbound: SwitchBinder = (request) =>
  Promise.reject(
    new UnderstudyError(
      'INTERNAL',
      `understudy switch ${request.from} ${request.to}: the switch is not yet bound to the inventory and driver`,
      {
        hint: 'Build this command with a SwitchBinder (registerSwitchCommands(program, ctx, binder)).',
      },
    ),
  );

/**
 * Starts the switch on a running `serve` and follows its events until it ends: the phases go to
 * `show`; a switch that failed throws the daemon's error, as the local command would.
 */
async function switchOverApi(
  api: ApiClient,
  request: SwitchRequest,
  show: ((event: ProgressEvent) => void) | undefined,
): Promise<SwitchResult> {
  const started = await api.request<{ eventsAfter: number; result?: SwitchResult }>(
    'POST',
    '/v1/switches',
    request,
  );
  let end: Record<string, unknown> | undefined;
  await api.follow({ after: started.eventsAfter }, (event) => {
    const d = event.data;
    if (d.from !== request.from || d.to !== request.to) return false;
    if (event.type === 'switch.phase')
      show?.({
        runId: '',
        step: `switch ${String(d.phase)}`,
        state: 'done',
        durationMs: Number(d.durationMs),
      });
    if (event.type !== 'switch.state') return false;
    end = d;
    return true;
  });
  if (!end) throw new UnderstudyError('API_NOT_AVAILABLE', `The event stream of ${api.url} ended early`);
  if (end.result) return end.result as SwitchResult;
  const code = String(end.code ?? 'INTERNAL');
  throw new UnderstudyError(
    (code in errorCatalogue ? code : 'INTERNAL') as ErrorCode,
    String(end.error ?? `the switch ${String(end.switchId)} ended ${String(end.state)}`),
  );
}

function renderRecord(r: SwitchRecord): string {
  const head = `${r.id}  ${r.plan.method}  ${r.plan.from.lc} -> ${r.plan.to.lc}  ${r.state}${r.error ? `\n  error: ${r.error}` : ''}`;
  return [
    head,
    table(
      ['#', 'STEP', 'STATE', 'ERROR'],
      r.steps.map((s) => [String(s.seq), s.name, s.state, s.error ?? '']),
    ),
  ].join('\n');
}

function renderJournal(records: readonly SwitchRecord[]): string {
  return records.length === 0
    ? 'No switches yet.'
    : table(
        ['ID', 'METHOD', 'FROM', 'TO', 'STATE', 'STARTED'],
        records.map((r) => [
          r.id,
          r.plan.method,
          r.plan.from.lc,
          r.plan.to.lc,
          r.state,
          r.startedAt.slice(0, 19),
        ]),
      );
}

export function registerSwitchCommands(
  program: Command,
  ctx: CliContext,
  binder: SwitchBinder = unbound,
): void {
  program
    .command('switch <from> <to>')
    .description('move the service from one logical computer to another with no failed request')
    .requiredOption('--method <method>', 'move-nic | swap-address | instant')
    .option(
      '--stateful',
      'the application disk holds data: final sync after the last write of <from>, before <to> serves',
    )
    .option('--from-address <cidr>', 'address <from> takes after the switch (swap-address, instant)')
    .option('--drain-timeout <ms>', 'longest wait for accepted requests to finish', '10000')
    .option('--follow', 'show each phase as it ends (with --json: one JSON object per phase)')
    .action(
      async (
        from: string,
        to: string,
        o: {
          method: string;
          stateful?: boolean;
          fromAddress?: string;
          drainTimeout: string;
          follow?: boolean;
        },
      ) => {
        const request: SwitchRequest = {
          from,
          to,
          method: parseSwitchMethod(o.method),
          stateful: o.stateful === true,
          fromAddress: o.fromAddress,
          drainTimeoutMs: Number(o.drainTimeout),
        };
        if (!Number.isInteger(request.drainTimeoutMs) || request.drainTimeoutMs < 0) {
          throw new UnderstudyError(
            'INVALID_ARGUMENT',
            `--drain-timeout: "${o.drainTimeout}" is not a number of milliseconds`,
          );
        }
        const follow = o.follow
          ? createProgressDisplay({
              json: ctx.json(),
              tty: process.stderr.isTTY === true,
              out: (text) => process.stdout.write(text),
              err: (text) => process.stderr.write(text),
            })
          : undefined;
        const printResult = (result: SwitchResult): void => {
          if (o.follow && ctx.json()) process.stdout.write(`${JSON.stringify({ result })}\n`);
          else
            ctx.print(
              result,
              () =>
                `${result.id}: switched ${from} -> ${to} by ${result.method} in ${result.durationMs} ms (drain ${result.drainMs} ms)`,
            );
        };
        const api = ctx.api();
        if (api) {
          ctx.progress(`switching ${from} -> ${to} by ${request.method} on ${api.url}…`);
          printResult(await switchOverApi(api, request, follow));
          return;
        }
        const app = ctx.openApp();
        try {
          const { plan, binding, after, verify } = await binder(request, app);
          ctx.progress(`switching ${from} -> ${to} by ${request.method}…`);
          // Each phase goes to the store's event log (a running serve streams it) and, with --follow, to the screen.
          ensureSchemas(app.db, [eventsSchema]);
          const log = new EventLog(app.db);
          const show = follow;
          let phaseStarted = performance.now();
          let switchId: string | null = null;
          const base = { from, to, method: request.method };
          // The phases inside the hold of a stateful switch are appended once it is released.
          const records = stepRecords();
          const afterStep = async (phase: string, id: string): Promise<void> => {
            const durationMs = Math.round(performance.now() - phaseStarted);
            phaseStarted = performance.now();
            switchId = id;
            records.add(phase, () => {
              log.append({
                type: 'switch.phase',
                lc: from,
                data: { switchId: id, ...base, phase, durationMs },
              });
              show?.({ runId: '', step: `switch ${phase}`, state: 'done', durationMs });
            });
            // The binding's own hook (the crash points of the crash tests) runs after the phase is logged.
            await binding.afterStep?.(phase, id);
          };
          const onHealth = (report: HealthReport): void => {
            log.append({ type: 'health', lc: report.lc, data: { switchId, ...base, ...report } });
          };
          let result: SwitchResult;
          try {
            result = await runSwitch(plan, { db: app.db, ...binding, afterStep, onHealth });
          } catch (error) {
            records.flush();
            const record = switchId ? new SwitchJournal(app.db).get(switchId) : undefined;
            log.append({
              type: 'switch.state',
              lc: from,
              data: {
                switchId,
                ...base,
                state: record?.state ?? 'failed',
                error: error instanceof Error ? error.message.split('\n')[0] : String(error),
                ...(isUnderstudyError(error) ? { code: error.code } : {}),
              },
            });
            throw error;
          }
          records.flush();
          log.append({
            type: 'switch.state',
            lc: from,
            data: {
              switchId: result.id,
              ...base,
              state: result.outcome,
              durationMs: result.durationMs,
              drainMs: result.drainMs,
              result,
            },
          });
          await after?.();
          printResult(result);
          // LC2 serves: the data disks are compared whole with LC1's at the cut (paced reads).
          if (verify) {
            ctx.progress('verify.tree: comparing the data disks whole with the old LC at the cut…');
            // The switch is done either way: a check that cannot run is reported, not thrown.
            const checks = await verify().catch((error: unknown) => {
              const message = error instanceof Error ? error.message : String(error);
              log.append({
                type: 'verify.tree',
                lc: to,
                data: { switchId: result.id, result: 'error', message },
              });
              process.stderr.write(`verify.tree could not run: ${message}\n`);
              return [];
            });
            for (const check of checks) {
              log.append({ type: 'verify.tree', lc: to, data: { switchId: result.id, ...check } });
              if (check.result === 'mismatch')
                // An alarm: shown even with --json (on stderr; the result on stdout stays one JSON).
                process.stderr.write(
                  `verify.tree MISMATCH: ${check.to} differs from ${check.from} at the cut in ${check.paths.join(', ')}\n`,
                );
              else
                ctx.progress(
                  `verify.tree ${check.result}: ${check.from} → ${check.to}${check.reason ? ` (${check.reason})` : ''}, ${check.entries} entries compared`,
                );
            }
          }
        } finally {
          app.close();
        }
      },
    );

  program
    .command('switches [id]')
    .description('the switch journal: recent switches, or the steps of one')
    .action(async (id: string | undefined) => {
      const api = ctx.api();
      if (api) {
        if (id) {
          const { switch: record } = await api.request<{ switch: SwitchRecord }>(
            'GET',
            `/v1/switches/${encodeURIComponent(id)}`,
          );
          ctx.print(record, () => renderRecord(record));
        } else {
          const { switches } = await api.request<{ switches: SwitchRecord[] }>('GET', '/v1/switches');
          ctx.print(switches, () => renderJournal(switches));
        }
        return;
      }
      const app = ctx.openApp();
      try {
        const journal = new SwitchJournal(app.db);
        if (id) {
          const record = journal.get(id);
          if (!record)
            throw new UnderstudyError('INVALID_ARGUMENT', `No switch with id ${id}`, {
              hint: '`understudy switches` lists them.',
            });
          ctx.print(record, () => renderRecord(record));
          return;
        }
        const records = journal.list();
        ctx.print(records, () => renderJournal(records));
      } finally {
        app.close();
      }
    });
}
