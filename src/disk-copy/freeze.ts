/**
 * Freezing the writers for the cut: freeze, run the step, thaw — always, even when the step fails.
 * A freeze that does not complete in time is undone and tried again: on cgroup v1 a freezer can stay
 * FREEZING for good while a vfork() parent (dash runs commands with vfork) waits for a child that froze
 * before it could exec; thawing lets the child exec, and the next attempt normally succeeds.
 */
import { UnderstudyError, sleep } from '../core/index.ts';
import type { Freezer } from './types.ts';

export interface FreezeOptions {
  /** How long one freeze attempt may take before it is undone (default 5 s). */
  timeoutMs?: number;
  /** Attempts before giving up with DISK_COPY_FREEZE_FAILED (default 5). */
  attempts?: number;
  /** Names the source in errors. */
  what: string;
}

export interface FrozenResult<T> {
  value: T;
  /** Sum over the attempts of the time from the freeze call to the return of thaw. */
  frozenMs: number;
  attempts: number;
}

const TIMED_OUT = Symbol('timed out');

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function whileFrozen<T>(
  freezer: Freezer,
  options: FreezeOptions,
  step: () => Promise<T>,
): Promise<FrozenResult<T>> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const attempts = options.attempts ?? 5;
  let frozenMs = 0;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const started = performance.now();
    let frozen: boolean;
    let value: T | undefined;
    try {
      const freezing = freezer.freeze();
      // A late rejection of an abandoned attempt must not go unhandled.
      freezing.catch(() => undefined);
      frozen = (await withTimeout(freezing, timeoutMs)) !== TIMED_OUT;
      if (frozen) value = await step();
    } finally {
      await freezer.thaw();
      frozenMs += performance.now() - started;
    }
    if (frozen) return { value: value as T, frozenMs, attempts: attempt };
    await sleep(20);
  }
  throw new UnderstudyError(
    'DISK_COPY_FREEZE_FAILED',
    `The writers of ${options.what} could not be frozen within ${timeoutMs} ms (${attempts} attempts); they were thawed again`,
    {
      details: { attempts, timeoutMs },
    },
  );
}
