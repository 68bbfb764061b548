/**
 * The passes of a cross-pool copy: full send, catch-up passes until the change is small (or the
 * convergence action), the cut, the final pass, and the writable destination. Each pass sends the
 * difference between two read-only snapshots of the source; once a pass is received, the older pair
 * of snapshots is deleted, so at most two generations exist on either side.
 */
import path from 'node:path';
import { UnderstudyError, exec } from '../../core/index.ts';
import { checkSpace, deleteSubvolume, snapshot, transfer, usedBytes } from './btrfs.ts';
import type { CopyJobContext, CutOutcome } from './job-context.ts';
import { whileFrozen } from '../freeze.ts';
import { decideNextStep } from '../policy.ts';
import { SendStreamParser } from './send-stream.ts';
import type { Convergence, PassReport, ResolvedCopyPolicy } from '../types.ts';

const MiB = 1024 * 1024;

async function runPass(
  ctx: CopyJobContext,
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
  // The full pass is the base copy, not history: it is not parsed, and its data goes straight from
  // send to receive without passing through this process.
  const parser =
    pass.kind === 'full'
      ? undefined
      : new SendStreamParser((command) => ctx.recorder.take(pass.number, command));
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
  const result = await transfer({
    snapshot: pass.snapshot,
    ...(pass.parent ? { parent: pass.parent } : {}),
    receiveDir: ctx.destinationStage,
    ...(ctx.options.signal ? { signal: ctx.options.signal } : {}),
    ...(parser ? { onChunk: (chunk: Buffer) => parser.push(chunk) } : {}),
    onBytes(done) {
      bytes = done;
      emit();
    },
  });
  // The full pass is counted by polling the sender's written bytes; a send that ends before the first
  // reading leaves no count, and the snapshot's used bytes stand in for it.
  bytes = result.bytes > 0 ? result.bytes : (pass.total ?? 0);
  parser?.end();
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

/** Runs every pass; calls onDestinationCreated just before the destination subvolume is made. */
export async function runSendReceive(
  ctx: CopyJobContext,
  policy: ResolvedCopyPolicy,
  onDestinationCreated: () => void,
): Promise<CutOutcome> {
  const { freezer, throttle } = ctx.options;
  const sourceSnapshot = (name: string): string => path.join(ctx.sourceStage, name);
  const received = (name: string): string => path.join(ctx.destinationStage, name);
  const drop = async (name: string): Promise<void> => {
    await deleteSubvolume(sourceSnapshot(name));
    await deleteSubvolume(received(name));
  };

  const firstSnapshotStarted = performance.now();
  await snapshot({ source: ctx.source, target: sourceSnapshot('pass-0'), readOnly: true });
  const firstSnapshotMs = performance.now() - firstSnapshotStarted;
  const total = await usedBytes(sourceSnapshot('pass-0'));
  // Metadata and the writes still to come need room too: ask for 2 % + 16 MiB more than the data.
  await checkSpace(ctx.poolPath, Math.ceil(total * 1.02) + 16 * MiB);
  ctx.throwIfCancelled();
  await runPass(ctx, {
    number: 0,
    kind: 'full',
    snapshot: sourceSnapshot('pass-0'),
    total,
    snapshotMs: firstSnapshotMs,
  });

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
      const snapshotStarted = performance.now();
      await snapshot({ source: ctx.source, target: sourceSnapshot(name), readOnly: true });
      const snapshotMs = performance.now() - snapshotStarted;
      const report = await runPass(ctx, {
        number: pass,
        kind: 'catch-up',
        snapshot: sourceSnapshot(name),
        parent: sourceSnapshot(previous),
        total: null,
        snapshotMs,
      });
      await drop(previous);
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
        ctx.options.logger?.info(
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
          `Copy of ${ctx.source} did not converge: pass ${pass} still carried ${report.bytes} bytes after ${policy.maxPasses} catch-up passes`,
          {
            details: { passes: ctx.passes },
          },
        );
      }
      longFreeze = true;
      convergence = 'long-freeze';
      break;
    }

    // The cut. Flush dirty data first so that the snapshot inside the freeze has little left to write.
    ctx.throwIfCancelled();
    await exec(['btrfs', 'filesystem', 'sync', ctx.source]);
    pass += 1;
    ctx.progress({ phase: 'cut', pass, bytesDone: 0, bytesTotal: null, bytesPerSecond: 0 });
    const cutSnapshot = sourceSnapshot('cut');
    let cutAt = '';
    let cutSnapshotMs = 0;
    const frozen = await whileFrozen(
      freezer,
      { what: ctx.source, ...(policy.freezeTimeoutMs ? { timeoutMs: policy.freezeTimeoutMs } : {}) },
      async () => {
        const snapshotStarted = performance.now();
        await snapshot({ source: ctx.source, target: cutSnapshot, readOnly: true });
        cutSnapshotMs = performance.now() - snapshotStarted;
        cutAt = new Date().toISOString();
        // Only a writer that outran every pass keeps the LC frozen across a transfer (policy long-freeze).
        if (longFreeze)
          await runPass(ctx, {
            number: pass,
            kind: 'final',
            snapshot: cutSnapshot,
            parent: sourceSnapshot(previous),
            total: null,
            snapshotMs: cutSnapshotMs,
          });
      },
    );
    const freezeMs = frozen.frozenMs;
    await liftThrottle();
    if (!longFreeze) {
      ctx.throwIfCancelled();
      await runPass(ctx, {
        number: pass,
        kind: 'final',
        snapshot: cutSnapshot,
        parent: sourceSnapshot(previous),
        total: null,
        snapshotMs: cutSnapshotMs,
      });
    }
    await drop(previous);
    onDestinationCreated();
    await snapshot({ source: received('cut'), target: ctx.destination, readOnly: false });
    // btrfs receive creates new files under temporary names in the root directory and renames them,
    // which changes the root's times; the stream only restores them when the source root changed.
    await exec(['touch', '--no-dereference', '-r', cutSnapshot, ctx.destination]);
    if (!ctx.options.keepSyncBase) await deleteSubvolume(received('cut'));
    return {
      cutSnapshot,
      receivedCut: received('cut'),
      cutAt,
      freezeMs,
      freezeAttempts: frozen.attempts,
      convergence,
      throttledMs,
    };
  } finally {
    // On failure: lift a throttle still in force (an error doing so must not hide the original one).
    await liftThrottle().catch((error: unknown) =>
      ctx.options.logger?.error({ err: error, jobId: ctx.jobId }, 'could not lift the write throttle'),
    );
  }
}
