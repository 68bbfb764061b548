/**
 * Benchmark of the final sync by transid (syncByTransid: no snapshot shares either disk's tree) in
 * the hold of a switch: is it, and the hold, flat in the size of the disk?
 *   node --import tsx bench/transid-hold.ts [--repeats N] [--rows 1k,100k,1m,1g,8g] [--initial cp|send]
 * The rows and the workload are bench/final-sync.ts's (final-sync-workload.ts). For each row, the
 * application disk (a btrfs subvolume on a sparse loop pool under /tmp, mounted noatime) is filled
 * and copied onto a second pool: with `--initial cp` (the default) by `cp -a` (no block shared, and
 * never a snapshot on either pool); with `--initial send` as the live copy copies a disk: a read-only
 * snapshot of the source sent whole (`btrfs send | btrfs receive`), the received subvolume made
 * writable and used as the target, the snapshot then deleted and dropped by the cleaner (the source's
 * tree was shared once, before the rounds).
 * Then N rounds, each row in turn:
 *   - catch-up pass: the fixed change (50 files rewritten, 50 created, 10 deleted) synced by
 *     syncByTransid; the same change again synced by the whole-tree rsync it replaces;
 *   - final increment: inside the hold, the sender's last writes (100 records appended to the log,
 *     one file rewritten, one created, each fsynced), syncByTransid, and the receiver reading the
 *     appended records. The final sync and that hold are timed.
 * The search helper (TransidSearcher) is started once, before the rounds, as a switch starts it
 * before its hold.
 * Prints medians per row and judges: the final sync flat (every row's median within 20 % of the
 * fastest row's) and under 50 ms; the hold flat. Exits 1 when a judgement fails.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../src/core/index.ts';
import {
  TransidSearcher,
  changesSince,
  syncByTransid,
  type TransidSyncOutcome,
} from '../src/disk-copy/index.ts';
import { createPool, createSubvolume } from '../test/e2e/disk-copy/fixtures.ts';
import {
  allRows,
  argValue,
  change,
  fillData,
  fillLog,
  fillSmallFiles,
  finalChange,
  logFile,
  median,
  ms,
  printTable,
  readFrom,
  rsyncWhole,
  type Row,
} from './final-sync-workload.ts';

const repeats = Number(argValue('--repeats') ?? 5);
const rowNames = (argValue('--rows') ?? '1k,100k,1m,1g,8g').split(',');
const rows = allRows.filter((r) => rowNames.includes(r.name));
const fixedCostGoalMs = 50;
const initial = argValue('--initial') ?? 'cp';
if (initial !== 'cp' && initial !== 'send') throw new Error(`--initial: cp or send, not ${initial}`);

type Synced = Exclude<TransidSyncOutcome, { overflow: true }>;

interface RowBench {
  row: Row;
  source: string;
  target: string;
  since: number;
  pass: Synced[];
  rsyncMs: number[];
  final: (Synced & { ms: number })[];
  hold: { holdMs: number; lastWriteMs: number; reloadMs: number }[];
}

const cleanups: (() => Promise<void>)[] = [];
/** The search helper, kept running as a switch keeps it from before its hold. */
let searcher: TransidSearcher | undefined;
async function cleanUp(): Promise<void> {
  for (const undo of cleanups.splice(0).reverse())
    await undo().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
}

async function sync(bench: RowBench): Promise<Synced & { ms: number }> {
  const started = performance.now();
  const outcome = await syncByTransid({
    source: bench.source,
    target: bench.target,
    since: bench.since,
    ...(searcher ? { searcher } : {}),
  });
  const took = performance.now() - started;
  if (outcome.overflow) throw new Error(`row ${bench.row.name}: the sync fell back: ${outcome.reason}`);
  bench.since = outcome.transid;
  return { ...outcome, ms: took };
}

async function setUpRow(row: Row): Promise<RowBench> {
  const started = performance.now();
  const a = await createPool(row.poolMb, 'tha', { mountOptions: ['noatime'] });
  cleanups.push(() => a.cleanup());
  const b = await createPool(row.poolMb, 'thb', { mountOptions: ['noatime'] });
  cleanups.push(() => b.cleanup());
  const source = path.join(a.path, 'app');
  const target = path.join(b.path, 'app');
  await createSubvolume(source);
  await fillSmallFiles(source, row.smallFiles);
  await fillData(source, row.dataGiB);
  await fillLog(source);
  if (initial === 'cp') {
    await createSubvolume(target);
    await exec(['cp', '-a', '--reflink=never', `${source}/.`, `${target}/`], { timeoutMs: 3_600_000 });
  } else {
    const cut = path.join(a.path, 'app.initial');
    await exec(['btrfs', 'subvolume', 'snapshot', '-r', source, cut]);
    const received = path.join(b.path, 'received');
    await fs.mkdir(received);
    await exec(['sh', '-c', 'btrfs send -q "$1" | btrfs receive -q "$2"', 'send', cut, received], {
      timeoutMs: 3_600_000,
    });
    await exec(['btrfs', 'property', 'set', '-f', '-ts', path.join(received, 'app.initial'), 'ro', 'false']);
    await fs.rename(path.join(received, 'app.initial'), target);
    await fs.rmdir(received);
    await exec(['btrfs', 'subvolume', 'delete', cut]);
    await exec(['btrfs', 'subvolume', 'sync', a.path], { timeoutMs: 3_600_000 });
  }
  const since = (await changesSince(source, 0)).transid;
  await exec(['sync', '-f', target]);
  console.error(
    `row ${row.name}: filled and copied (${initial}) in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  return { row, source, target, since, pass: [], rsyncMs: [], final: [], hold: [] };
}

async function measureRound(bench: RowBench, r: number): Promise<void> {
  await change(bench.source, bench.row.smallFiles, 2 * r, 'lc1');
  bench.pass.push(await sync(bench));
  await change(bench.source, bench.row.smallFiles, 2 * r + 1, 'lc1');
  await exec(['sync']);
  bench.rsyncMs.push(await rsyncWhole(bench.source, bench.target));
  await sync(bench); // re-based after the rsync (not timed)
  const logSize = (await fs.stat(logFile(bench.target))).size;
  const holdStarted = performance.now();
  await finalChange(bench.source, bench.row.smallFiles, 2 * r, 'lc1');
  const lastWriteMs = performance.now() - holdStarted;
  bench.final.push(await sync(bench));
  const reloadStarted = performance.now();
  await readFrom(logFile(bench.target), logSize);
  const reloadMs = performance.now() - reloadStarted;
  bench.hold.push({ holdMs: performance.now() - holdStarted, lastWriteMs, reloadMs });
}

function judge(what: string, medians: number[], goal?: number): boolean {
  const fastest = Math.min(...medians);
  const slowest = Math.max(...medians);
  const flat = slowest <= fastest * 1.2;
  console.log(
    `${what}: ${flat ? 'PASS' : 'FAIL'} flat — slowest row ${((slowest / fastest) * 100).toFixed(0)} % of the fastest (flat = within 120 %)`,
  );
  if (goal === undefined) return flat;
  const cheap = slowest < goal;
  console.log(
    `${what}: ${cheap ? 'PASS' : 'FAIL'} cost — slowest row's median ${ms(slowest)} (goal: under ${goal} ms)`,
  );
  return flat && cheap;
}

async function main(): Promise<void> {
  if (rows.length === 0) throw new Error(`--rows: none of ${rowNames.join(',')} is a row`);
  const started = performance.now();
  const load = (await fs.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  const benches: RowBench[] = [];
  for (const row of rows) benches.push(await setUpRow(row));
  const kept = TransidSearcher.start();
  searcher = kept;
  cleanups.push(() => kept.close());
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < benches.length; k++) await measureRound(benches[(r + k) % benches.length]!, r);
    console.error(`round ${r + 1}/${repeats} done`);
  }
  for (const bench of benches) {
    const result = await exec(['diff', '-r', '-q', bench.source, bench.target], {
      okCodes: [0, 1],
      timeoutMs: 3_600_000,
    });
    if (result.stdout.trim() !== '')
      throw new Error(`row ${bench.row.name}: the copy differs:\n${result.stdout.slice(0, 2000)}`);
  }
  const endLoad = (await fs.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  console.log(
    `Initial copy: ${initial}. Load average at the start ${load}, at the end ${endLoad}. Every copy equals its source at the end (diff -r).`,
  );
  const finals = benches.map((b) => median(b.final.map((f) => f.ms)));
  const fastest = Math.min(...finals);
  printTable(
    `Final sync by transid inside the hold: 100 records appended to the 64 MiB log, 1 file rewritten, 1 created, each fsynced (median of ${repeats})`,
    ['disk', 'final sync', 'vs fastest row', 'search', 'copy', 'check + syncfs', 'paths', 'patched', 'bytes'],
    benches.map((b, i) => [
      b.row.name,
      ms(finals[i] ?? 0),
      `${(((finals[i] ?? 0) / fastest) * 100).toFixed(0)} %`,
      ms(median(b.final.map((f) => f.searchMs))),
      ms(median(b.final.map((f) => f.copyMs))),
      ms(median(b.final.map((f) => f.verifyMs))),
      String(median(b.final.map((f) => f.whole))),
      String(median(b.final.map((f) => f.patched))),
      String(median(b.final.map((f) => f.bytes))),
    ]),
  );
  const finalPass = judge('final sync', finals, fixedCostGoalMs);
  const holds = benches.map((b) => median(b.hold.map((h) => h.holdMs)));
  printTable(
    `Hold (its disk part): the sender's last writes + the final sync + the receiver reading the appended records (median of ${repeats})`,
    ['disk', 'hold', 'vs fastest row', 'last writes', 'reload'],
    benches.map((b, i) => [
      b.row.name,
      ms(holds[i] ?? 0),
      `${(((holds[i] ?? 0) / Math.min(...holds)) * 100).toFixed(0)} %`,
      ms(median(b.hold.map((h) => h.lastWriteMs))),
      ms(median(b.hold.map((h) => h.reloadMs))),
    ]),
  );
  const holdPass = judge('hold', holds);
  printTable(
    `Catch-up pass by transid: 100 files written + 10 deleted since the last pass, beside the whole-tree rsync (median of ${repeats})`,
    ['disk', 'pass', 'search', 'copy', 'check + syncfs', 'whole-tree rsync'],
    benches.map((b) => [
      b.row.name,
      ms(median(b.pass.map((p) => p.searchMs + p.copyMs + p.verifyMs))),
      ms(median(b.pass.map((p) => p.searchMs))),
      ms(median(b.pass.map((p) => p.copyMs))),
      ms(median(b.pass.map((p) => p.verifyMs))),
      ms(median(b.rsyncMs)),
    ]),
  );
  console.log(
    `\nTotal ${((performance.now() - started) / 60_000).toFixed(1)} min; overall ${finalPass && holdPass ? 'PASS' : 'FAIL'}`,
  );
  process.exitCode = finalPass && holdPass ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void cleanUp().finally(() => process.exit(130));
  });
try {
  await main();
} finally {
  await cleanUp();
}
