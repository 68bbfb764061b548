/**
 * The workload the final-sync benchmarks share (bench/final-sync.ts, bench/transid-hold.ts): the
 * rows (small files in directories of 1,000, large blobs, a 64 MiB service log in every row), the
 * catch-up change, the service's last writes inside the hold, the whole-tree rsync baseline, and the
 * tables.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../src/core/index.ts';

export interface Row {
  name: string;
  smallFiles: number;
  dataGiB: number;
  poolMb: number;
}

export const allRows: Row[] = [
  { name: '1k', smallFiles: 1_000, dataGiB: 0, poolMb: 2048 },
  { name: '20k', smallFiles: 20_000, dataGiB: 0, poolMb: 2048 },
  { name: '100k', smallFiles: 100_000, dataGiB: 0, poolMb: 4096 },
  { name: '1m', smallFiles: 1_000_000, dataGiB: 0, poolMb: 16384 },
  { name: '1g', smallFiles: 1_000, dataGiB: 1, poolMb: 4096 },
  { name: '8g', smallFiles: 1_000, dataGiB: 8, poolMb: 14336 },
];

export const FILES_PER_DIR = 1000;

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
export const ms = (value: number): string => `${value.toFixed(1)} ms`;

export function printTable(title: string, headers: string[], body: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(
    `\n${title}\n${line(headers)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${body.map(line).join('\n')}`,
  );
}

export const fileOf = (root: string, i: number): string =>
  path.join(root, 'files', `d${Math.floor(i / FILES_PER_DIR)}`, `f${i}`);

/** `count` small files (~100 bytes) in directories of 1,000, written from this process. */
export async function fillSmallFiles(root: string, count: number): Promise<void> {
  const body = Buffer.alloc(100, 'x');
  for (let dir = 0; dir * FILES_PER_DIR < count; dir++) {
    await fs.mkdir(path.join(root, 'files', `d${dir}`), { recursive: true });
    const writes: Promise<void>[] = [];
    for (let i = dir * FILES_PER_DIR; i < Math.min(count, (dir + 1) * FILES_PER_DIR); i++)
      writes.push(fs.writeFile(fileOf(root, i), body));
    await Promise.all(writes);
  }
}

export async function fillData(root: string, gib: number): Promise<void> {
  await fs.mkdir(path.join(root, 'data'), { recursive: true });
  for (let i = 0; i < gib * 8; i++)
    await exec(
      [
        'dd',
        'if=/dev/urandom',
        `of=${path.join(root, 'data', `blob${i}`)}`,
        'bs=1M',
        'count=128',
        'status=none',
      ],
      { timeoutMs: 600_000 },
    );
}

/**
 * The fixed change: 50 existing files rewritten, 50 new files, 10 existing files deleted. `round`
 * picks different files each time (never one deleted before).
 */
export async function change(root: string, total: number, round: number, side: string): Promise<void> {
  const stride = Math.max(1, Math.floor(total / 200));
  const pick = (k: number): number => (round * 61 + k * stride) % total;
  for (let k = 0; k < 50; k++) {
    const file = fileOf(root, pick(k));
    await fs.writeFile(file, `rewritten by ${side} in round ${round}\n`).catch(() => undefined);
  }
  await fs.mkdir(path.join(root, 'new', side), { recursive: true });
  for (let k = 0; k < 50; k++)
    await fs.writeFile(path.join(root, 'new', side, `r${round}-${k}`), `new ${k}\n`);
  for (let k = 50; k < 60; k++) await fs.rm(fileOf(root, pick(k)), { force: true });
}

export async function rsyncWhole(from: string, to: string): Promise<number> {
  const started = performance.now();
  await exec(['rsync', '-aHAX', '--numeric-ids', '--delete', '--modify-window=-1', `${from}/`, `${to}/`], {
    timeoutMs: 3_600_000,
  });
  return performance.now() - started;
}

/** The service's log, present in every row (grown by the final increment). */
export const logFile = (root: string): string => path.join(root, 'log', 'app.log');
export const logMb = 64;

export async function fillLog(root: string): Promise<void> {
  await fs.mkdir(path.dirname(logFile(root)), { recursive: true });
  const record = `${'r'.repeat(99)}\n`;
  await fs.writeFile(logFile(root), record.repeat((logMb * 1024 * 1024) / record.length));
}

/**
 * What a service writes between the last catch-up pass and its last write before the cut: 100
 * records appended to its log (10 kB), one file rewritten, one created.
 */
export async function finalChange(root: string, total: number, round: number, side: string): Promise<void> {
  const write = async (file: string, flags: string, data: string): Promise<void> => {
    const handle = await fs.open(file, flags);
    try {
      await handle.write(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  await write(logFile(root), 'a', `${side} round ${round} `.padEnd(99, '.').concat('\n').repeat(100));
  await write(fileOf(root, (round * 7919) % total), 'w', `rewritten last by ${side} in round ${round}\n`);
  await write(path.join(root, 'log', `${side}-${round}`), 'w', 'created last\n');
}

/** Reads a file from `offset` to its end; returns the bytes read. */
export async function readFrom(file: string, offset: number): Promise<number> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
    return bytesRead;
  } finally {
    await handle.close();
  }
}

/** The value after `flag` on the command line, if any. */
export const argValue = (flag: string): string | undefined => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? process.argv[i + 1] : undefined;
};
