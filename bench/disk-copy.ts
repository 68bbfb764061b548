/**
 * Benchmark of the live disk copy on this machine: two btrfs pools on sparse loop images under /tmp.
 *   node --import tsx bench/disk-copy.ts [--quick] [--only throughput,catch-up,writer,freeze] [--loop direct|buffered]
 * Prints a table per measure; figures go into docs/disk-copy.md with the command.
 * --loop: how the two pools' loop devices read and write their images: `direct` (direct I/O, the
 * default, as the host's pools are attached: src/host/pool.ts attachLoop) or `buffered` (through
 * the host's page cache, as they were before).
 * --quick uses 256 MiB / 1 GiB disks and fewer runs (a smoke run, not the published figures).
 */
import path from 'node:path';
import { exec } from '../src/core/index.ts';
import { copyDisk, type CopyResult, type Freezer } from '../src/disk-copy/index.ts';
import {
  createPool,
  createSubvolume,
  fillTree,
  startWriter,
  type Pool,
} from '../test/e2e/disk-copy/fixtures.ts';

const quick = process.argv.includes('--quick');
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : undefined;
const wanted = (section: string): boolean => only === undefined || only.has(section);
const loopArg = process.argv.indexOf('--loop');
const loopValue = loopArg > 0 ? process.argv[loopArg + 1] : 'direct';
if (loopValue !== 'direct' && loopValue !== 'buffered') throw new Error('--loop: direct or buffered');
const loop: 'direct' | 'buffered' = loopValue;
const MiB = 1024 * 1024;
const smallDiskMb = quick ? 256 : 1024;
const bigDiskMb = quick ? 1024 : 8192;
const runs = quick ? 1 : 3;
const freezeRuns = quick ? 2 : 5;
const writerRuns = quick ? 2 : 10;
const noFreeze: Freezer = { async freeze() {}, async thaw() {} };

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
const ms = (value: number): string => `${value.toFixed(1)} ms`;
const sec = (value: number): string => `${(value / 1000).toFixed(2)} s`;
const rate = (bytes: number, millis: number): string => `${(bytes / MiB / (millis / 1000)).toFixed(0)} MiB/s`;

function printTable(title: string, headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(
    `\n${title}\n${line(headers)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.map(line).join('\n')}`,
  );
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function deleteSubvolume(target: string): Promise<void> {
  await exec(['btrfs', 'subvolume', 'delete', target], { okCodes: [0, 1] });
}

/** Waits until deleted subvolumes are cleaned, so that the next run finds the space free. */
async function settle(pool: Pool): Promise<void> {
  await exec(['btrfs', 'subvolume', 'sync', pool.path], { timeoutMs: 600_000 });
  await exec(['sync']);
}

/** A disk of about `mb` MiB: 200 small files, then random data in one large file. */
async function makeDisk(pool: Pool, name: string, mb: number): Promise<string> {
  const disk = path.join(pool.path, name);
  await createSubvolume(disk);
  await fillTree(disk, { largeMb: Math.max(1, mb - 2), smallFiles: 200 });
  await exec(['sync']);
  return disk;
}

async function throughput(a: Pool, b: Pool, disk: string, bytes: number): Promise<number> {
  const times: Record<string, number[]> = {
    'understudy copyDisk': [],
    '  of which pass 0 (full send)': [],
    'cp -a': [],
    'rsync -a': [],
  };
  for (let run = 0; run < runs; run += 1) {
    let result: CopyResult | undefined;
    const target = `copy-${run}`;
    times['understudy copyDisk']?.push(
      await timed(async () => {
        result = await copyDisk({
          source: disk,
          destination: { poolPath: b.path, name: target },
          freezer: noFreeze,
        });
        await exec(['sync', '-f', path.join(b.path, target)]);
      }),
    );
    const full = result?.passes[0];
    times['  of which pass 0 (full send)']?.push((full?.snapshotMs ?? 0) + (full?.durationMs ?? 0));
    await deleteSubvolume(path.join(b.path, target));
    await settle(b);
    for (const [label, argv] of [
      ['cp -a', (dst: string) => ['cp', '-a', `${disk}/.`, `${dst}/`]],
      ['rsync -a', (dst: string) => ['rsync', '-a', `${disk}/`, `${dst}/`]],
    ] as const) {
      const dst = path.join(b.path, `${label.split(' ')[0]}-${run}`);
      await createSubvolume(dst);
      times[label]?.push(
        await timed(async () => {
          await exec(argv(dst), { timeoutMs: 1_800_000 });
          await exec(['sync', '-f', dst]);
        }),
      );
      await deleteSubvolume(dst);
      await settle(b);
    }
  }
  const cpMedian = median(times['cp -a'] ?? []);
  printTable(
    `Full copy of a ${(bytes / MiB).toFixed(0)} MiB tree, pool A → pool B (median of ${runs}; each timing ends with sync -f of the copy)`,
    ['method', 'median', 'throughput', 'vs cp -a'],
    Object.entries(times).map(([label, values]) => [
      label,
      sec(median(values)),
      rate(bytes, median(values)),
      `${((cpMedian / median(values)) * 100).toFixed(0)} %`,
    ]),
  );
  return median(times['understudy copyDisk'] ?? []);
}

/** Changes 1 MiB (in place, in the large file) between the full pass and the first catch-up pass. */
async function catchUp(a: Pool, b: Pool, disk: string): Promise<void> {
  const large = path.join(disk, 'var', 'lib', 'app', 'large.bin');
  const rows: string[][] = [];
  const ours: number[] = [];
  const fulls: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    let changed = false;
    const target = `catchup-${run}`;
    const result = await copyDisk({
      source: disk,
      destination: { poolPath: b.path, name: target },
      freezer: noFreeze,
      onProgress: (e) => {
        // The first event of the full pass comes after its snapshot: a change now is caught up by pass 1.
        if (!changed && e.phase === 'full') {
          changed = true;
          void exec([
            'dd',
            'if=/dev/urandom',
            `of=${large}`,
            'bs=1M',
            'count=1',
            `seek=${run * 7}`,
            'conv=notrunc',
            'status=none',
          ]);
        }
      },
    });
    const full = result.passes[0];
    const pass1 = result.passes[1];
    if (full && pass1) {
      fulls.push(full.snapshotMs + full.durationMs);
      ours.push(pass1.snapshotMs + pass1.durationMs);
    }
    await deleteSubvolume(path.join(b.path, target));
    await settle(b);
  }
  // rsync: full copy once, then the same 1 MiB change re-synced.
  const dst = path.join(b.path, 'rsync-catchup');
  await createSubvolume(dst);
  await exec(['rsync', '-a', `${disk}/`, `${dst}/`], { timeoutMs: 1_800_000 });
  const rsyncFull = await timed(() =>
    exec(['rsync', '-a', `${disk}/`, `${path.join(b.path, 'rsync-catchup-full')}/`], {
      timeoutMs: 1_800_000,
    }),
  );
  await exec(['rm', '-rf', path.join(b.path, 'rsync-catchup-full')]);
  const resync: number[] = [];
  const resyncInplace: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    await exec([
      'dd',
      'if=/dev/urandom',
      `of=${large}`,
      'bs=1M',
      'count=1',
      `seek=${100 + run}`,
      'conv=notrunc',
      'status=none',
    ]);
    resync.push(await timed(() => exec(['rsync', '-a', `${disk}/`, `${dst}/`], { timeoutMs: 1_800_000 })));
    await exec([
      'dd',
      'if=/dev/urandom',
      `of=${large}`,
      'bs=1M',
      'count=1',
      `seek=${200 + run}`,
      'conv=notrunc',
      'status=none',
    ]);
    resyncInplace.push(
      await timed(() =>
        exec(['rsync', '-a', '--inplace', '--no-whole-file', `${disk}/`, `${dst}/`], {
          timeoutMs: 1_800_000,
        }),
      ),
    );
  }
  await deleteSubvolume(dst);
  await settle(b);
  rows.push([
    'understudy catch-up pass (snapshot + send -p | receive)',
    ms(median(ours)),
    `${((median(ours) / median(fulls)) * 100).toFixed(2)} % of its full pass (${sec(median(fulls))})`,
  ]);
  rows.push([
    'rsync -a re-sync',
    ms(median(resync)),
    `${((median(resync) / rsyncFull) * 100).toFixed(1)} % of rsync's full copy (${sec(rsyncFull)})`,
  ]);
  rows.push([
    'rsync -a --inplace --no-whole-file re-sync',
    ms(median(resyncInplace)),
    `${((median(resyncInplace) / rsyncFull) * 100).toFixed(1)} % of rsync's full copy`,
  ]);
  printTable(
    `Catch-up after 1 MiB changed in place on a ${smallDiskMb} MiB disk (median of ${runs})`,
    ['method', 'time', 'relative'],
    rows,
  );
}

/** Freeze time at the cut with a moderate writer inside, for two disk sizes. */
async function freezeTimes(a: Pool, b: Pool, disks: { label: string; path: string }[]): Promise<void> {
  const rows: string[][] = [];
  for (const disk of disks) {
    const writer = await startWriter({ dir: disk.path, bigMb: 1, pauseSeconds: 0.05 });
    const freezes: number[] = [];
    const snapshots: number[] = [];
    try {
      for (let run = 0; run < freezeRuns; run += 1) {
        const target = `freeze-${run}`;
        const result = await copyDisk({
          source: disk.path,
          destination: { poolPath: b.path, name: target },
          freezer: writer.cgroup.freezer,
        });
        freezes.push(result.freezeMs);
        snapshots.push(result.passes.at(-1)?.snapshotMs ?? 0);
        await deleteSubvolume(path.join(b.path, target));
        await settle(b);
      }
    } finally {
      await writer.stop();
    }
    rows.push([
      disk.label,
      String(freezeRuns),
      ms(median(freezes)),
      ms(Math.min(...freezes)),
      ms(Math.max(...freezes)),
      ms(median(snapshots)),
    ]);
  }
  printTable(
    'Freeze time at the cut (writer inside: 1 MiB in place + append/create/rename/delete every 50 ms)',
    ['disk', 'runs', 'median freeze', 'min', 'max', 'median cut snapshot'],
    rows,
  );
}

/** A writer at >= 50 MB/s during the copy: converges, and the copy equals the source at the cut, every run. */
async function fastWriter(a: Pool, b: Pool, disk: string): Promise<void> {
  const writer = await startWriter({ dir: disk, bigMb: 4, pauseSeconds: 0.02, slots: 32 });
  const rows: string[][] = [];
  let equal = 0;
  const writerStarted = performance.now();
  const roundsAtStart = await writer.rounds();
  try {
    for (let run = 0; run < writerRuns; run += 1) {
      const target = `fast-${run}`;
      const result = await copyDisk({
        source: disk,
        destination: { poolPath: b.path, name: target },
        freezer: writer.cgroup.freezer,
        verify: true,
        policy: { maxPasses: 8, cutBelowBytes: 64 * MiB, onNoConvergence: 'long-freeze' },
      });
      if (result.verification) equal += 1;
      rows.push([
        String(run + 1),
        String(result.passes.length - 2),
        result.convergence,
        ms(result.freezeMs),
        `${(result.passes.at(-1)?.bytes ?? 0) / MiB > 0.1 ? ((result.passes.at(-1)?.bytes ?? 0) / MiB).toFixed(1) : '<0.1'} MiB`,
        result.history.text,
        result.verification ? 'equal' : 'NOT VERIFIED',
      ]);
      await deleteSubvolume(path.join(b.path, target));
      await settle(b);
    }
  } finally {
    const rounds = (await writer.rounds()) - roundsAtStart;
    const elapsed = performance.now() - writerStarted;
    await writer.stop();
    console.log(
      `\nwriter: ${rounds} rounds of 4 MiB (+ ~9 KiB) in ${sec(elapsed)} = ${((rounds * 4 * MiB) / 1e6 / (elapsed / 1000)).toFixed(0)} MB/s while copying`,
    );
  }
  printTable(
    `Copy with a fast writer inside (4 MiB random in place over a 128 MiB working set every ~20 ms + append/create/rename/delete; policy: maxPasses 8, cut below 64 MiB), ${equal}/${writerRuns} equal at the cut`,
    ['run', 'catch-up passes', 'convergence', 'freeze', 'final pass', 'history', 'tree hash at cut'],
    rows,
  );
}

async function main(): Promise<void> {
  console.log(
    `disk-copy benchmark${quick ? ' (quick)' : ''} — ${new Date().toISOString()}, kernel ${(await exec(['uname', '-r'])).stdout.trim()}, ${(await exec(['nproc'])).stdout.trim()} CPUs, loop devices: ${loop} I/O`,
  );
  const poolMb = bigDiskMb + 4096;
  const a = await createPool(poolMb, 'bench-a', { loop });
  const b = await createPool(poolMb, 'bench-b', { loop });
  try {
    const small = await makeDisk(a, 'disk-small', smallDiskMb);
    const bytes =
      Number((await exec(['du', '-s', '-B1', '--apparent-size', small])).stdout.split('\t')[0]) - 64 * MiB; // minus the sparse file
    if (wanted('throughput')) await throughput(a, b, small, bytes);
    if (wanted('catch-up')) await catchUp(a, b, small);
    if (wanted('writer')) await fastWriter(a, b, small);
    if (wanted('freeze')) {
      const big = await makeDisk(a, 'disk-big', bigDiskMb);
      await freezeTimes(a, b, [
        { label: `${smallDiskMb} MiB`, path: small },
        { label: `${bigDiskMb} MiB`, path: big },
      ]);
    }
  } finally {
    await b.cleanup();
    await a.cleanup();
  }
}

await main();
