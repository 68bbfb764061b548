/**
 * How a long operation shows its progress: on a terminal one line per step plus a live line for the
 * running copy (phase, bytes, rate, ETA); plain lines when stderr is not a terminal; with --json one
 * JSON object per event on stdout.
 */
export interface ProgressEvent {
  runId: string;
  step: string;
  state: string;
  message?: string;
  durationMs?: number;
  progress?: Record<string, number | string | null>;
}

export interface ProgressOptions {
  json: boolean;
  tty: boolean;
  out: (text: string) => void;
  err: (text: string) => void;
  now?: () => number;
}

const mib = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** One line describing a copy's progress: phase, bytes (of total), rate and ETA when known. */
export function describeProgress(step: string, p: Record<string, number | string | null>): string {
  const done = Number(p.bytesDone ?? 0);
  const total = typeof p.bytesTotal === 'number' ? p.bytesTotal : null;
  const rate = Number(p.bytesPerSecond ?? 0);
  const eta = total !== null && rate > 0 && total > done ? ` ETA ${Math.ceil((total - done) / rate)} s` : '';
  return `${step}: ${String(p.phase ?? '')} pass ${String(p.pass ?? 0)} ${mib(done)}${total ? ` of ${mib(total)}` : ''}${rate > 0 ? ` at ${mib(rate)}/s` : ''}${eta}`;
}

export function createProgressDisplay(options: ProgressOptions): (event: ProgressEvent) => void {
  const now = options.now ?? Date.now;
  let lastNote = 0;
  let liveLine = false;
  const clearLive = (): void => {
    if (liveLine) options.err('\r\x1b[2K');
    liveLine = false;
  };
  return (event) => {
    if (options.json) {
      options.out(`${JSON.stringify(event)}\n`);
      return;
    }
    if (event.state === 'note') {
      const bytes = event.progress !== undefined && 'bytesDone' in event.progress;
      const text = bytes
        ? describeProgress(event.step, event.progress as Record<string, number | string | null>)
        : `${event.step}: ${event.message ?? ''}`;
      if (options.tty && bytes) {
        options.err(`\r\x1b[2K        ${text}`);
        liveLine = true;
        return;
      }
      // Without a terminal, copy progress arrives often: one line a second is enough for a person.
      if (bytes && now() - lastNote < 1000) return;
      lastNote = now();
      clearLive();
      options.err(`        ${text}\n`);
      return;
    }
    clearLive();
    const time = event.durationMs === undefined ? '' : ` (${secs(event.durationMs)})`;
    options.err(
      `${event.state.padEnd(7)} ${event.step}${time}${event.message ? `: ${event.message.split('\n')[0]}` : ''}\n`,
    );
  };
}
