/**
 * Step 702: scan the running LC's system disk for malicious programs before it is copied, so that
 * nothing bad is carried into the new system. ClamAV's clamscan with a configurable signature
 * database; a finding stops the run and names the files.
 */
import { UnderstudyError, exec } from '../core/index.ts';

export interface ScanResult {
  files: number;
  infected: { path: string; signature: string }[];
  database: string;
  durationMs: number;
}

/** Scans `root` (a host path). Exit 0 = clean, 1 = found, 2 = error (clamscan's contract). */
export async function scanTree(options: {
  root: string;
  database?: string;
  signal?: AbortSignal;
}): Promise<ScanResult> {
  // The scan reads the whole system disk while the LC serves: at the lowest CPU and I/O priority, so
  // that it takes the host's cores and disk only when the service does not need them.
  const argv = [
    'nice',
    '-n',
    '19',
    'ionice',
    '-c',
    '3',
    'clamscan',
    '--recursive',
    '--infected',
    '--stdout',
    '--cross-fs=no',
    '--max-filesize=200M',
    '--max-scansize=400M',
  ];
  if (options.database) argv.push(`--database=${options.database}`);
  argv.push(options.root);
  const started = performance.now();
  const result = await exec(argv, { okCodes: [0, 1], timeoutMs: 30 * 60_000, signal: options.signal });
  const infected = result.stdout
    .split('\n')
    .map((line) => /^(.*): (.+) FOUND$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ path: (m[1] ?? '').slice(options.root.length) || '/', signature: m[2] ?? '' }));
  if (result.exitCode === 1 && infected.length === 0) {
    throw new UnderstudyError(
      'SCAN_FAILED',
      `clamscan reported a finding it did not name:\n${result.stdout.slice(-2000)}`,
    );
  }
  const files = Number(/Scanned files: (\d+)/.exec(result.stdout)?.[1] ?? 0);
  return {
    files,
    infected,
    database: options.database ?? 'ClamAV default',
    durationMs: performance.now() - started,
  };
}
