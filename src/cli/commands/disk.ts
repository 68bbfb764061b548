/**
 * `understudy disk copy|history|copies`: the live disk copy (seed 703/704) of an LC's disk from the
 * command line, with a progress bar, and the write history of past copies. Disks are named by LC and
 * disk, never by host path: the disk store of the host decides where they are.
 */
import type { Command } from 'commander';
import { UnderstudyError, requireRoot } from '../../core/index.ts';
import {
  describeHistory,
  formatBytes,
  getCopyJob,
  listCopyHistory,
  listCopyJobs,
  type CopyDiskOptions,
  type CopyProgress,
  type CopyJob,
  type CopyResult,
  type HistoryRecord,
  type NoConvergenceAction,
} from '../../disk-copy/index.ts';
import { copyLcDisk, type App } from '../../app/index.ts';
import { table, type CliContext } from '../context.ts';
import type { ApiClient } from '../api-client.ts';

interface CopyFlags {
  verify?: boolean;
  mode?: string;
  maxPasses?: string;
  cutBelowMb?: string;
  onNoConvergence?: string;
}

/** One line of progress; on a terminal it redraws itself as a bar. */
export function formatProgress(e: CopyProgress): string {
  const rate = `${formatBytes(e.bytesPerSecond)}/s`;
  if (e.bytesTotal) {
    const fraction = Math.min(1, e.bytesDone / e.bytesTotal);
    const width = 24;
    const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.');
    return `pass ${e.pass} ${e.phase.padEnd(9)} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)} ${rate}`;
  }
  return `pass ${e.pass} ${e.phase.padEnd(9)} ${formatBytes(e.bytesDone)} ${e.bytesDone ? rate : ''}`.trimEnd();
}

/** The copy's progress: a bar on a terminal, one line per phase otherwise, NDJSON with --json --follow. */
function progressRenderer(ctx: CliContext, follow: boolean): (e: CopyProgress) => void {
  if (ctx.json())
    return follow ? (e) => process.stdout.write(`${JSON.stringify({ progress: e })}\n`) : () => undefined;
  const tty = process.stderr.isTTY;
  let last: CopyProgress | undefined;
  return (e) => {
    if (tty) process.stderr.write(`\r\x1b[2K${formatProgress(e)}${e.phase === 'done' ? '\n' : ''}`);
    // Not a terminal: one line per phase, with how that phase ended.
    else if (last && last.phase !== e.phase) ctx.progress(formatProgress(last));
    last = e;
  };
}

function copyOptions(flags: CopyFlags): Pick<CopyDiskOptions, 'mode' | 'policy'> & { verify: boolean } {
  const mode = flags.mode ?? 'auto';
  if (!['auto', 'send-receive', 'snapshot'].includes(mode))
    throw new UnderstudyError('INVALID_ARGUMENT', `--mode: "${mode}" is not auto, send-receive or snapshot`);
  const policy: NonNullable<CopyDiskOptions['policy']> = {};
  if (flags.maxPasses !== undefined) policy.maxPasses = Number(flags.maxPasses);
  if (flags.cutBelowMb !== undefined) policy.cutBelowBytes = Number(flags.cutBelowMb) * 1024 * 1024;
  if (flags.onNoConvergence !== undefined) {
    if (!['throttle', 'long-freeze', 'fail'].includes(flags.onNoConvergence)) {
      throw new UnderstudyError(
        'INVALID_ARGUMENT',
        `--on-no-convergence: "${flags.onNoConvergence}" is not throttle, long-freeze or fail`,
      );
    }
    policy.onNoConvergence = flags.onNoConvergence as NoConvergenceAction;
  }
  return { mode: mode as CopyDiskOptions['mode'], policy, verify: flags.verify === true };
}

function describeResult(r: CopyResult): string {
  const lines = [
    `copied ${r.source} → ${r.destination} (${r.mode}, job ${r.jobId})`,
    `cut at ${r.cutAt}; writers frozen ${r.freezeMs.toFixed(1)} ms${r.freezeAttempts > 1 ? ` (${r.freezeAttempts} attempts)` : ''}; ${r.convergence}${r.throttledMs ? `, throttled ${(r.throttledMs / 1000).toFixed(1)} s` : ''}`,
    `${r.passes.length} pass(es), ${formatBytes(r.bytesSent)} sent in ${(r.durationMs / 1000).toFixed(1)} s`,
    `write history: ${r.history.text}`,
  ];
  const v = r.verification;
  if (v?.method === 'clone-diff')
    lines.push(`verified: the copy is an unchanged clone of the cut (compared by the kernel, no data read)`);
  else if (v)
    lines.push(
      `verified: ${v.entries ?? 0} entries, ${formatBytes(v.bytes)}, sha256 ${(v.digest ?? '').slice(0, 16)}…`,
    );
  return lines.join('\n');
}

async function withStore<T>(ctx: CliContext, fn: (app: App) => Promise<T> | T): Promise<T> {
  const app = ctx.openApp();
  try {
    return await fn(app);
  } finally {
    app.close();
  }
}

/** How long the progress of a copy that ended may still take to arrive on the event stream. */
const lateProgressMs = 2000;

/**
 * Copies on a running `serve` and shows its progress as the local command does: the daemon's
 * `copy.progress` events of this copy (same LCs and disks) go to `show` until the copy answered and
 * its `done` arrived (or, after a failure, at once).
 */
async function copyOverApi(
  api: ApiClient,
  options: { from: string; disk: string; to: string; toDisk?: string },
  show: (progress: CopyProgress) => void,
): Promise<CopyResult> {
  const toDisk = options.toDisk ?? options.disk;
  const mine = (d: Record<string, unknown>): boolean =>
    d.from === options.from && d.disk === options.disk && d.to === options.to && d.toDisk === toDisk;
  const controller = new AbortController();
  let jobId: string | undefined;
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const following = api
    .follow({ signal: controller.signal, onOpen: opened }, (event) => {
      if (event.type !== 'copy.progress' || !mine(event.data)) return false;
      const progress = event.data.progress as CopyProgress;
      // The first copy seen after the request is this one; another copy of the same disks is not shown.
      jobId ??= progress.jobId;
      if (progress.jobId !== jobId) return false;
      show(progress);
      return progress.phase === 'done';
    })
    // The stream only shows progress: the request's answer (or error) is the command's.
    .catch(() => undefined)
    .finally(opened);
  await open;
  try {
    const { copy } = await api.request<{ copy: CopyResult }>('POST', '/v1/disk-copies', options);
    const late = setTimeout(() => controller.abort(), lateProgressMs);
    await following.finally(() => clearTimeout(late));
    return copy;
  } catch (error) {
    controller.abort();
    await following;
    throw error;
  }
}

/** Runs a copy, cancelling it cleanly on Ctrl-C / SIGTERM. */
async function cancellable(copy: (signal: AbortSignal) => Promise<CopyResult>): Promise<CopyResult> {
  const controller = new AbortController();
  const stop = (): void => controller.abort(new UnderstudyError('DISK_COPY_CANCELLED', 'Interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await copy(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export function registerDiskCommands(program: Command, ctx: CliContext): void {
  const disk = program.command('disk').description('live disk copy with write history (seed 703/704)');
  const addCopyFlags = (c: Command): Command =>
    c
      .option('--verify', 'hash both trees at the cut and fail unless equal')
      .option('--mode <mode>', 'auto | send-receive | snapshot', 'auto')
      .option('--max-passes <n>', 'catch-up passes before the convergence action')
      .option('--cut-below-mb <mb>', 'cut when a catch-up pass carried at most this many MiB')
      .option('--on-no-convergence <action>', 'throttle | long-freeze | fail');

  addCopyFlags(
    disk
      .command('copy <lc> <disk>')
      .description(
        "copy a running LC's disk onto another LC's disk of the same name (the target LC must be stopped)",
      )
      .requiredOption('--to <lc2>', 'the LC whose disk receives the copy')
      .option('--to-disk <name>', 'name of the target disk (default: the same name)')
      .option('--follow', 'with --json: one JSON object per progress event, then the result'),
  ).action(
    async (
      lcName: string,
      diskName: string,
      flags: CopyFlags & { to: string; toDisk?: string; follow?: boolean },
    ) => {
      const options = {
        from: lcName,
        disk: diskName,
        to: flags.to,
        toDisk: flags.toDisk,
        ...copyOptions(flags),
      };
      const api = ctx.api();
      let result: CopyResult;
      const follow = flags.follow === true;
      if (api) result = await copyOverApi(api, options, progressRenderer(ctx, follow));
      else {
        requireRoot('disk copy');
        result = await withStore(ctx, async (app) => {
          const host = await app.start();
          return cancellable((signal) =>
            copyLcDisk(app.db, host, { ...options, onProgress: progressRenderer(ctx, follow), signal }),
          );
        });
      }
      if (ctx.json() && follow)
        process.stdout.write(`${JSON.stringify({ result: { ...result, records: undefined } })}\n`);
      else ctx.print({ ...result, records: undefined }, () => describeResult(result));
    },
  );

  disk
    .command('history <copy-id>')
    .description('the write history recorded during a copy')
    .option('--limit <n>', 'records to show (0 = summary only)', '50')
    .action(async (jobId: string, flags: { limit: string }) => {
      const limit = Number(flags.limit);
      const api = ctx.api();
      const { job, records } = api
        ? await api
            .request<{ copy: CopyJob; records: HistoryRecord[] }>(
              'GET',
              `/v1/disk-copies/${encodeURIComponent(jobId)}?limit=${limit}`,
            )
            .then((r) => ({ job: r.copy, records: r.records }))
        : await withStore(ctx, (app) => ({
            job: getCopyJob(app.db, jobId),
            records: limit > 0 ? listCopyHistory(app.db, jobId, { limit }) : [],
          }));
      ctx.print({ job, records }, () =>
        [
          `copy ${job.id}: ${job.label ?? `${job.source} → ${job.destination}`} — ${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}`,
          job.cutAt ? `cut at ${job.cutAt}; frozen ${job.freezeMs?.toFixed(1)} ms; ${job.convergence}` : '',
          `write history: ${describeHistory(job.history)}`,
          records.length
            ? table(
                ['PASS', 'AT', 'OP', 'PATH', 'OFFSET', 'LENGTH'],
                records.map((r) => [
                  String(r.pass),
                  r.at,
                  r.op,
                  r.pathTo ? `${r.path} → ${r.pathTo}` : r.path,
                  r.offset === undefined ? '' : String(r.offset),
                  r.length === undefined ? '' : String(r.length),
                ]),
              )
            : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  disk
    .command('copies')
    .description('recent disk copies')
    .action(async () => {
      const api = ctx.api();
      const jobs = api
        ? (await api.request<{ copies: CopyJob[] }>('GET', '/v1/disk-copies')).copies
        : await withStore(ctx, (app) => listCopyJobs(app.db));
      ctx.print(jobs, () =>
        jobs.length === 0
          ? 'no disk copies yet'
          : table(
              ['ID', 'STATE', 'MODE', 'STARTED', 'FROZEN', 'HISTORY', 'COPY'],
              jobs.map((j) => [
                j.id,
                j.state,
                j.mode,
                j.startedAt,
                j.freezeMs === null ? '' : `${j.freezeMs.toFixed(1)} ms`,
                `${j.history.writes} writes, ${formatBytes(j.history.bytes)}`,
                j.label ?? j.destination,
              ]),
            ),
      );
    });
}
