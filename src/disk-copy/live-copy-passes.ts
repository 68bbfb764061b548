/**
 * The passes of a live copy over a store's copy primitives (copy-session.ts): the full pass, catch-up
 * passes until the change is small (or the policy's convergence action), the cut at a freeze point,
 * the final pass, and the writable destination. Each pass sends the difference between two read-only
 * snapshots of the source; once a pass is received, the older snapshot is deleted, so at most two
 * generations exist on either side.
 */
import { UnderstudyError, type Logger } from '../core/index.ts';
import type { CopySession } from './copy-session.ts';
import { whileFrozen } from './freeze.ts';
import type { HistoryRecorder } from './history.ts';
import { decideNextStep } from './policy.ts';
import type {
  Convergence,
  CopyProgress,
  Freezer,
  PassReport,
  ResolvedCopyPolicy,
  Throttle,
} from './types.ts';

const MiB = 1024 * 1024;

/** What the passes of one copy job share with the job around them. */
export interface PassContext {
  jobId: string;
  session: CopySession;
  freezer: Freezer;
  throttle?: Throttle;
  policy: ResolvedCopyPolicy;
  recorder: HistoryRecorder;
  passes: PassReport[];
  signal?: AbortSignal;
  logger?: Logger;
  throwIfCancelled(): void;
  progress(event: Omit<CopyProgress, 'jobId' | 'elapsedMs'>): void;
  /** Stores history records gathered since the last call (when a db was given). */
  flushHistory(): void;
  /** Called just before the destination is cloned into place. */
  destinationCreated(): void;
}

export interface CutOutcome {
  /** The source's snapshot at the cut (the verification hashes it). */
  cut: string;
  cutAt: string;
  freezeMs: number;
  freezeAttempts: number;
  convergence: Convergence;
  throttledMs: number;
}

/** The snapshot mode: the cut is a snapshot inside the freeze, cloned in the destination's place. */
export async function cutInPlace(ctx: PassContext): Promise<CutOutcome> {
  ctx.progress({ phase: 'cut', pass: 0, bytesDone: 0, bytesTotal: null, bytesPerSecond: 0 });
  // Flush dirty data first so that the snapshot inside the freeze has little left to write.
  await ctx.session.flush();
  let cutAt = '';
  const frozen = await whileFrozen(ctx.freezer, freezeOptions(ctx), async () => {
    await ctx.session.snapshot('cut');
    cutAt = new Date().toISOString();
  });
  ctx.destinationCreated();
  await ctx.session.clone('cut');
  return {
    cut: 'cut',
    cutAt,
    freezeMs: frozen.frozenMs,
    freezeAttempts: frozen.attempts,
    convergence: 'instant',
    throttledMs: 0,
  };
}

const freezeOptions = (ctx: PassContext): { what: string; timeoutMs?: number } => ({
  what: ctx.session.names.source,
  ...(ctx.policy.freezeTimeoutMs ? { timeoutMs: ctx.policy.freezeTimeoutMs } : {}),
});

async function runPass(
  ctx: PassContext,
  pass: {
    number: number;
    kind: PassReport['kind'];
    snapshot: string;
    parent?: string;
    total: number | null;
    snapshotMs: number;
  },
): Promise<PassReport> {
  const phase = pass.kind;
  const recordsBefore = ctx.recorder.records.length;
  const started = performance.now();
  let bytes = 0;
  const emit = (): void => {
    const seconds = (performance.now() - started) / 1000;
    ctx.progress({
      phase,
      pass: pass.number,
      bytesDone: bytes,
      bytesTotal: pass.total,
      bytesPerSecond: seconds > 0 ? bytes / seconds : 0,
    });
  };
  emit();
  // The full pass is the base copy, not history: its changes are not recorded.
  const result = await ctx.session.send({
    snapshot: pass.snapshot,
    ...(pass.parent ? { parent: pass.parent } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(pass.kind === 'full' ? {} : { onChange: (change) => ctx.recorder.take(pass.number, change) }),
    onBytes(done) {
      bytes = done;
      emit();
    },
  });
  // A full send that ends before it could be counted leaves no count: the snapshot's size stands in.
  bytes = result.bytes > 0 ? result.bytes : (pass.total ?? 0);
  emit();
  const report: PassReport = {
    pass: pass.number,
    kind: pass.kind,
    bytes,
    snapshotMs: pass.snapshotMs,
    durationMs: result.durationMs,
    records: ctx.recorder.records.length - recordsBefore,
  };
  ctx.passes.push(report);
  ctx.flushHistory();
  return report;
}

async function timedSnapshot(ctx: PassContext, name: string): Promise<number> {
  const started = performance.now();
  await ctx.session.snapshot(name);
  return performance.now() - started;
}

/** The send-receive mode: every pass, the cut and the destination; see the file comment. */
export async function sendPasses(ctx: PassContext): Promise<CutOutcome> {
  const { session, freezer, throttle, policy } = ctx;
  const firstSnapshotMs = await timedSnapshot(ctx, 'pass-0');
  const total = await session.size('pass-0');
  // Metadata and the writes still to come need room too: ask for 2 % + 16 MiB more than the data.
  await session.checkSpace(Math.ceil(total * 1.02) + 16 * MiB);
  ctx.throwIfCancelled();
  await runPass(ctx, { number: 0, kind: 'full', snapshot: 'pass-0', total, snapshotMs: firstSnapshotMs });

  let previous = 'pass-0';
  let pass = 0;
  let passesInPhase = 0;
  let throttledSince: number | undefined;
  let throttledMs = 0;
  let longFreeze = false;
  let convergence: Convergence;
  const liftThrottle = async (): Promise<void> => {
    if (throttledSince === undefined || !throttle) return;
    await throttle.lift();
    throttledMs = performance.now() - throttledSince;
    throttledSince = undefined;
  };
  try {
    for (;;) {
      ctx.throwIfCancelled();
      pass += 1;
      passesInPhase += 1;
      const name = `pass-${pass}`;
      const snapshotMs = await timedSnapshot(ctx, name);
      const report = await runPass(ctx, {
        number: pass,
        kind: 'catch-up',
        snapshot: name,
        parent: previous,
        total: null,
        snapshotMs,
      });
      await session.deleteSnapshot(previous);
      previous = name;
      const sent = ctx.passes.reduce((sum, p) => sum + p.bytes, 0);
      const seconds = ctx.passes.reduce((sum, p) => sum + p.durationMs, 0) / 1000;
      const step = decideNextStep(
        {
          lastPassBytes: report.bytes,
          passesInPhase,
          throttled: throttledSince !== undefined,
          copyBytesPerSecond: seconds > 0 ? sent / seconds : 0,
        },
        policy,
      );
      if (step.action === 'again') continue;
      if (step.action === 'cut') {
        convergence = throttledSince !== undefined ? 'throttled' : 'converged';
        break;
      }
      if (step.action === 'throttle' && throttle) {
        ctx.logger?.info(
          { jobId: ctx.jobId, bytesPerSecond: step.bytesPerSecond },
          'copy not converging; throttling the writers',
        );
        throttledSince = performance.now();
        await throttle.limit(step.bytesPerSecond);
        passesInPhase = 0;
        continue;
      }
      if (step.action === 'fail') {
        throw new UnderstudyError(
          'DISK_COPY_NOT_CONVERGED',
          `Copy of ${session.names.source} did not converge: pass ${pass} still carried ${report.bytes} bytes after ${policy.maxPasses} catch-up passes`,
          { details: { passes: ctx.passes } },
        );
      }
      longFreeze = true;
      convergence = 'long-freeze';
      break;
    }

    // The cut. Flush dirty data first so that the snapshot inside the freeze has little left to write.
    ctx.throwIfCancelled();
    await session.flush();
    pass += 1;
    ctx.progress({ phase: 'cut', pass, bytesDone: 0, bytesTotal: null, bytesPerSecond: 0 });
    let cutAt = '';
    let cutSnapshotMs = 0;
    const finalPass = {
      number: pass,
      kind: 'final' as const,
      snapshot: 'cut',
      parent: previous,
      total: null,
    };
    const frozen = await whileFrozen(freezer, freezeOptions(ctx), async () => {
      cutSnapshotMs = await timedSnapshot(ctx, 'cut');
      cutAt = new Date().toISOString();
      // Only a writer that outran every pass keeps the LC frozen across a transfer (policy long-freeze).
      if (longFreeze) await runPass(ctx, { ...finalPass, snapshotMs: cutSnapshotMs });
    });
    await liftThrottle();
    if (!longFreeze) {
      ctx.throwIfCancelled();
      await runPass(ctx, { ...finalPass, snapshotMs: cutSnapshotMs });
    }
    await session.deleteSnapshot(previous);
    ctx.destinationCreated();
    await session.clone('cut');
    return {
      cut: 'cut',
      cutAt,
      freezeMs: frozen.frozenMs,
      freezeAttempts: frozen.attempts,
      convergence,
      throttledMs,
    };
  } finally {
    // On failure: lift a throttle still in force (an error doing so must not hide the original one).
    await liftThrottle().catch((error: unknown) =>
      ctx.logger?.error({ err: error, jobId: ctx.jobId }, 'could not lift the write throttle'),
    );
  }
}
