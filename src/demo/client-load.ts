/**
 * Runs the load generator inside a client namespace (a real client on the bridge) and collects its
 * summary. Marks (e.g. the switch window) are sent on its standard input while it runs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnderstudyError, spawnProcess } from '../core/index.ts';
import type { AckedWrite, LoadSummary, RequestRecord, WindowLatency } from '../loadgen/index.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ClientLoadReport {
  summary: LoadSummary;
  marks: { label: string; at: number }[];
  synRetransmits?: number;
  markWindow?: WindowLatency;
  records: RequestRecord[];
  ackedWrites: AckedWrite[];
}

export interface ClientLoad {
  mark(label: string): void;
  /** Stops the load (in-flight requests finish) and resolves with the report. */
  stop(): Promise<ClientLoadReport>;
}

export interface ClientLoadOptions {
  netns: string;
  url: string;
  rate: number;
  /** Upper bound; the load is normally stopped earlier with stop(). */
  maxDurationS: number;
  mix?: string;
  uploadDurationMs?: number;
}

export async function startClientLoad(options: ClientLoadOptions): Promise<ClientLoad> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-load-')), 'result.json');
  const proc = spawnProcess(
    [
      'ip',
      'netns',
      'exec',
      options.netns,
      process.execPath,
      '--import',
      'tsx',
      path.join(repoRoot, 'src/loadgen/cli.ts'),
      '--url',
      options.url,
      '--rate',
      String(options.rate),
      '--duration',
      String(options.maxDurationS),
      '--max-requests',
      String(Math.ceil(options.rate * options.maxDurationS)),
      '--mix',
      options.mix ?? 'newconn=0.3,keepalive=0.55,upload=0.05,write=0.1',
      '--upload-duration',
      String(options.uploadDurationMs ?? 2000),
      '--out',
      out,
    ],
    { cwd: repoRoot },
  );
  let stdout = '';
  let stderr = '';
  proc.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  // Wait for the generator to say it started, so marks and the run happen under load.
  const deadline = Date.now() + 20_000;
  while (!stderr.includes('"started"')) {
    if (Date.now() > deadline)
      throw new UnderstudyError('INTERNAL', `The load generator did not start:\n${stderr.slice(-2000)}`);
    if (proc.child.exitCode !== null)
      throw new UnderstudyError('INTERNAL', `The load generator exited:\n${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    mark(label) {
      proc.child.stdin?.write(`mark ${label}\n`);
    },
    async stop() {
      proc.child.stdin?.write('stop\n');
      proc.child.stdin?.end();
      const result = await proc.done;
      if (result.exitCode !== 0)
        throw new UnderstudyError(
          'INTERNAL',
          `The load generator failed (exit ${String(result.exitCode)}):\n${stderr.slice(-2000)}`,
        );
      const brief = JSON.parse(stdout) as Omit<ClientLoadReport, 'records' | 'ackedWrites'>;
      const full = JSON.parse(fs.readFileSync(out, 'utf8')) as {
        records: RequestRecord[];
        ackedWrites: ClientLoadReport['ackedWrites'];
      };
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
      return { ...brief, records: full.records, ackedWrites: full.ackedWrites };
    },
  };
}
