/**
 * Why does the cut's snapshot cost more on a disk with 1,000,000 files than on one with 1,000?
 *   node --import tsx bench/snapshot-cost.ts [--repeats N] [--files 1000,1000000] [--mount noatime|relatime]
 * Two subvolumes (1,000 and 1,000,000 small files in directories of 1,000) on one loop-file btrfs pool.
 * Each round replays, per subvolume, what a switch does to the source disk before its cut: a catch-up
 * change (110 files rewritten, spread over the tree) and its snapshot, the older snapshot deleted (as
 * the sync's re-base does), then the last change (3 files), a flush, and the cut's snapshot, timed
 * (`btrfs subvolume snapshot -r`, the product's command). Conditions, interleaved per round and size:
 *   plain         — as above;
 *   cleaner-done  — after the deletion, `btrfs filesystem sync <pool>` and `btrfs subvolume sync
 *                   <pool>` (the cleaner has dropped every deleted snapshot) before the last change;
 *   idle          — the snapshot right after another one, nothing changed in between.
 * The last change's 3 writes are each fsynced, and timed too ("last writes").
 * Prints median / p25 / p75 per condition and size, and the time `btrfs subvolume sync` waited.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../src/core/index.ts';
import { createPool } from '../test/e2e/disk-copy/fixtures.ts';

const argValue = (flag: string): string | undefined => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const repeats = Number(argValue('--repeats') ?? 15);
const sizes = (argValue('--files') ?? '1000,1000000').split(',').map(Number);
const mountOption = argValue('--mount') ?? 'noatime';
const conditions = (argValue('--conditions') ?? 'plain,cleaner-done,idle').split(',');
const PER_DIR = 1000;

const fileOf = (root: string, i: number): string => path.join(root, `d${Math.floor(i / PER_DIR)}`, `f${i}`);

async function fill(root: string, count: number): Promise<void> {
  const body = Buffer.alloc(100, 'x');
  for (let dir = 0; dir * PER_DIR < count; dir++) {
    await fs.mkdir(path.join(root, `d${dir}`), { recursive: true });
    const writes: Promise<void>[] = [];
    for (let i = dir * PER_DIR; i < Math.min(count, (dir + 1) * PER_DIR); i++)
      writes.push(fs.writeFile(fileOf(root, i), body));
    await Promise.all(writes);
  }
}

async function writeSynced(file: string, flags: string, data: string): Promise<void> {
  const handle = await fs.open(file, flags);
  try {
    await handle.write(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const timed = async (argv: string[]): Promise<number> => {
  const t = performance.now();
  await exec(argv, { timeoutMs: 600_000 });
  return performance.now() - t;
};
const q = (values: number[], p: number): number => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))] ?? 0;
};

async function main(): Promise<void> {
  const pool = await createPool(16384, 'snapcost');
  let serial = 0;
  try {
    await exec(['mount', '-o', `remount,${mountOption}`, pool.path]);
    const subs = sizes.map((n) => ({ n, root: path.join(pool.path, `s${n}`), base: '' }));
    for (const s of subs) {
      const t = performance.now();
      await exec(['btrfs', 'subvolume', 'create', s.root]);
      await fill(s.root, s.n);
      console.error(`filled ${s.n} files in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    }
    await exec(['sync']);
    const snap = async (s: (typeof subs)[number]): Promise<[string, number]> => {
      const target = path.join(pool.path, `snap-${s.n}-${serial++}`);
      return [target, await timed(['btrfs', 'subvolume', 'snapshot', '-r', s.root, target])];
    };
    const drop = async (target: string): Promise<void> => {
      if (target) await exec(['btrfs', 'subvolume', 'delete', target]);
    };
    for (const s of subs) [s.base] = await snap(s);
    const figures = new Map<string, number[]>();
    const waits: number[] = [];
    const put = (key: string, v: number): void => {
      figures.set(key, [...(figures.get(key) ?? []), v]);
    };
    for (let r = 0; r < repeats; r++) {
      for (const condition of conditions)
        for (const s of r % 2 ? [...subs].reverse() : subs) {
          // The catch-up change, spread over the tree, and its pass's snapshot; the older one deleted.
          const stride = Math.max(1, Math.floor(s.n / 110));
          for (let k = 0; k < 110; k++)
            await fs.writeFile(fileOf(s.root, (r * 37 + k * stride) % s.n), `round ${r} ${k}\n`);
          await exec(['btrfs', 'filesystem', 'sync', s.root]);
          const [mid] = await snap(s);
          await drop(s.base);
          if (condition === 'cleaner-done') {
            // What the final sync's preparation does: commit (the deletion is then on disk and
            // the cleaner woken), then wait until the cleaner has dropped every deleted snapshot.
            const t = performance.now();
            await exec(['btrfs', 'filesystem', 'sync', pool.path]);
            await exec(['btrfs', 'subvolume', 'sync', pool.path], { timeoutMs: 600_000 });
            waits.push(performance.now() - t);
          }
          s.base = mid;
          if (condition !== 'idle') {
            // The last writes, each fsynced as a service acknowledges a write (timed apart).
            const t = performance.now();
            await writeSynced(path.join(s.root, 'log'), 'a', 'x'.repeat(10_000));
            await writeSynced(fileOf(s.root, (r * 7919) % s.n), 'w', `last ${r}\n`);
            await writeSynced(path.join(s.root, `new-${r}`), 'w', 'new\n');
            put(`last writes, ${condition} ${s.n}`, performance.now() - t);
          }
          await exec(['btrfs', 'filesystem', 'sync', s.root]);
          const [cut, ms] = await snap(s);
          put(`snapshot, ${condition} ${s.n}`, ms);
          await drop(s.base);
          s.base = cut;
        }
    }
    console.log(`mount ${mountOption}, ${repeats} rounds, snapshot -r timed (ms): median [p25–p75]`);
    for (const [key, values] of figures)
      console.log(
        `${key.padEnd(36)} ${q(values, 0.5).toFixed(1)} [${q(values, 0.25).toFixed(1)}–${q(values, 0.75).toFixed(1)}]`,
      );
    if (waits.length)
      console.log(
        `filesystem sync + subvolume sync waited: median ${q(waits, 0.5).toFixed(1)} ms, max ${Math.max(...waits).toFixed(1)} ms`,
      );
  } finally {
    await pool.cleanup();
  }
}

await main();
