/**
 * Command-line entry of the load generator, meant to run inside a client network namespace:
 *
 *   ip netns exec <ns> node --import tsx src/loadgen/cli.ts --url http://198.18.0.10/ --rate 1000 \
 *     --duration 10 --max-requests 20000 --mix newconn=0.3,keepalive=0.6,upload=0.1 --out results.json
 *
 * Prints one JSON object on stdout when the run ends: {summary, marks, synRetransmits, window?, markWindow?}.
 * `--out` also writes the full result (every request record, acknowledged writes) to a file.
 *
 * On stderr, `{"started": <epoch ms>}` is printed once the load has begun.
 * Control while running, one command per line on stdin:
 *   mark <label>   records a timestamped marker; its {mark, at} is echoed as a JSON line on stderr
 *   stop           stops scheduling early (in-flight requests still finish); SIGINT/SIGTERM do the same
 * With two or more marks, `markWindow` compares requests scheduled between the first and the last mark
 * against the rest (added latency). `--window t0,t1` (ms since the epoch) does the same for given times.
 * Exit code: 0, or 1 with --expect-zero-failures when any request failed, 2 for bad arguments, 3 for a bug.
 */
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { isUnderstudyError, UnderstudyError } from '../core/index.ts';
import {
  parseMix,
  readSynRetransmits,
  startLoad,
  windowLatency,
  type LoadResult,
  type WindowLatency,
} from './index.ts';

interface CliOptions {
  url: string;
  rate: string;
  duration: string;
  maxRequests: string;
  mix: string;
  pool?: string;
  timeout?: string;
  idleTimeout?: string;
  uploadBytes?: string;
  uploadDuration?: string;
  uploadChunks?: string;
  uploadPath?: string;
  writePrefix?: string;
  errorStatusFrom?: string;
  out?: string;
  window?: string;
  stdin: boolean;
  expectZeroFailures?: boolean;
}

const optionalNumber = (text: string | undefined): number | undefined =>
  text === undefined ? undefined : Number(text);

function parseWindow(text: string): { t0: number; t1: number } {
  const [t0, t1] = text.split(',').map(Number);
  if (t0 === undefined || t1 === undefined || !Number.isFinite(t0) || !Number.isFinite(t1) || t1 < t0) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `--window must be t0,t1 in ms since the epoch with t0 <= t1, got ${text}`,
    );
  }
  return { t0, t1 };
}

function write(text: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(text, () => resolve()));
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('loadgen')
    .description('Open-loop HTTP/1.1 load with exact accounting of every request.')
    .requiredOption('--url <url>', 'target, e.g. http://198.18.0.10/')
    .option('--rate <n>', 'requests per second', '1000')
    .option('--duration <s>', 'seconds to schedule requests for', '10')
    .option('--max-requests <n>', 'stop after this many requests', '1000000')
    .option('--mix <spec>', 'fractions, e.g. newconn=0.3,keepalive=0.6,upload=0.1,write=0', 'keepalive=1')
    .option('--pool <n>', 'keep-alive pool size (default 16)')
    .option('--timeout <ms>', 'request timeout (default 5000)')
    .option('--idle-timeout <ms>', 'close pooled connections idle this long (default 800)')
    .option('--upload-bytes <n>', 'upload body size (default 65536)')
    .option('--upload-duration <ms>', 'time to send an upload body over (default 3000)')
    .option('--upload-chunks <n>', 'chunks per upload body (default 10)')
    .option('--upload-path <path>', 'default /upload')
    .option('--write-prefix <path>', 'writes PUT <prefix><key> (default /kv/)')
    .option('--error-status-from <code>', 'statuses at or above are http-error (default 500)')
    .option('--out <file>', 'write the full result with every request record here')
    .option('--window <t0,t1>', 'report added latency for requests scheduled in this window (epoch ms)')
    .option('--no-stdin', 'do not read mark/stop commands from stdin')
    .addOption(new Option('--expect-zero-failures', 'exit 1 when any request failed'))
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const cli = program.opts<CliOptions>();
  const window = cli.window ? parseWindow(cli.window) : undefined;

  const synBefore = await readSynRetransmits();
  const load = startLoad({
    url: cli.url,
    rate: Number(cli.rate),
    durationMs: Number(cli.duration) * 1000,
    maxRequests: Number(cli.maxRequests),
    mix: parseMix(cli.mix),
    poolSize: optionalNumber(cli.pool),
    timeoutMs: optionalNumber(cli.timeout),
    idleTimeoutMs: optionalNumber(cli.idleTimeout),
    uploadBytes: optionalNumber(cli.uploadBytes),
    uploadDurationMs: optionalNumber(cli.uploadDuration),
    uploadChunks: optionalNumber(cli.uploadChunks),
    uploadPath: cli.uploadPath,
    writePathPrefix: cli.writePrefix,
    errorStatusFrom: optionalNumber(cli.errorStatusFrom),
  });
  process.stderr.write(`${JSON.stringify({ started: Date.now() })}\n`);
  const stopEarly = (): void => void load.stop();
  process.once('SIGINT', stopEarly);
  process.once('SIGTERM', stopEarly);
  const lines = cli.stdin ? createInterface({ input: process.stdin }) : undefined;
  lines?.on('line', (line) => {
    const [command, ...rest] = line.trim().split(/\s+/);
    if (command === 'mark')
      process.stderr.write(
        `${JSON.stringify({ mark: load.mark(rest.join(' ') || 'mark').label, at: Date.now() })}\n`,
      );
    else if (command === 'stop') stopEarly();
    else if (command) process.stderr.write(`${JSON.stringify({ ignored: line })}\n`);
  });

  const result: LoadResult = await load.done;
  lines?.close();
  process.stdin.destroy();
  const synAfter = await readSynRetransmits();
  const first = result.marks[0];
  const last = result.marks[result.marks.length - 1];
  const uploadDurationMs = result.options.uploadDurationMs;
  const markWindow: WindowLatency | undefined =
    first && last && result.marks.length >= 2
      ? windowLatency(result.records, { t0: first.at, t1: last.at, uploadDurationMs })
      : undefined;
  const output = {
    startedAt: result.startedAt,
    endedAt: result.endedAt,
    summary: result.summary,
    marks: result.marks,
    synRetransmits: synAfter - synBefore,
    ...(window
      ? { window: { ...window, ...windowLatency(result.records, { ...window, uploadDurationMs }) } }
      : {}),
    ...(markWindow ? { markWindow } : {}),
  };
  if (cli.out) await writeFile(cli.out, JSON.stringify({ ...result, synRetransmits: output.synRetransmits }));
  await write(`${JSON.stringify(output, null, 2)}\n`);
  return cli.expectZeroFailures && result.summary.failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof Error && 'code' in error && String(error.code).startsWith('commander.')) {
      process.exit(
        String(error.code) === 'commander.helpDisplayed' || String(error.code) === 'commander.version'
          ? 0
          : 2,
      );
    }
    if (isUnderstudyError(error)) {
      process.stderr.write(
        `${JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint } })}\n`,
      );
      process.exit(2);
    }
    process.stderr.write(`${JSON.stringify({ error: { code: 'INTERNAL', message: String(error) } })}\n`);
    if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    process.exit(3);
  },
);
