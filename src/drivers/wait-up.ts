/** Waiting for an LC's start-up to finish, the same way for every driver. */
import { UnderstudyError } from '../core/index.ts';
import type { LcStatus } from './driver.ts';
import { waitFor } from '../core/index.ts';

/**
 * Polls `status` until the LC is running. Throws LC_BOOT_FAILED, with the console's last lines and
 * where to read the whole log, when it stops or crashes first, or when `timeoutMs` passes.
 */
export async function waitUntilRunning(options: {
  lc: string;
  status: () => Promise<LcStatus>;
  timeoutMs: number;
  consoleTail: () => string;
  consoleLogPath: string;
}): Promise<void> {
  const { lc, timeoutMs } = options;
  let last: LcStatus | undefined;
  const up = await waitFor(
    async () => {
      last = await options.status();
      if (last.state === 'running') return true;
      if (last.state === 'stopped' || last.state === 'crashed') return false;
      return undefined;
    },
    { timeoutMs, intervalMs: 20 },
  );
  if (up !== true) {
    throw new UnderstudyError(
      'LC_BOOT_FAILED',
      `The logical computer "${lc}" ${up === false ? `is ${last?.state ?? 'down'}` : `did not finish booting within ${timeoutMs} ms`}:\n${options.consoleTail()}`,
      { hint: `Read ${options.consoleLogPath}.` },
    );
  }
}
