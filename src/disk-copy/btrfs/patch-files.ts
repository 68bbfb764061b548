/**
 * The copy of a file whose only change since the sync base was to bytes in place (a log that grew, a
 * page rewritten): only the byte ranges the source changed (from its metadata-only send stream) are
 * written into the target's file, in place, then its size and attributes follow the source. The cost
 * follows the bytes changed, not the size of the file.
 *
 * This is exact only when the target's file is the base's file: the caller makes sure the target did
 * not change the path since the base, that the two bases hold the same file (a sync where the sender
 * wins leaves them equal), that neither side's file has another name (a hard link), and that the
 * source never truncated the file below the base's size. A failure half-way leaves the target's file
 * partly patched: one more change of the target since its base, so the next sync copies it whole.
 */
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ContentEdit } from './change-set.ts';

export interface FilePatch {
  relative: string;
  edit: ContentEdit;
}

/** Ranges sorted, merged where they touch, clipped to `size`. */
export function mergeRanges(ranges: readonly [number, number][], size: number): [number, number][] {
  const sorted = ranges
    .map(([offset, length]): [number, number] => [offset, Math.min(offset + length, size)])
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

const chunk = 1 << 20;

/** Copies [start, end) of `from` to the same place in `to`; returns the bytes written. */
async function copyRange(
  from: fs.FileHandle,
  to: fs.FileHandle,
  start: number,
  end: number,
  buffer: Buffer,
): Promise<number> {
  let written = 0;
  for (let at = start; at < end;) {
    const { bytesRead } = await from.read(buffer, 0, Math.min(buffer.length, end - at), at);
    if (bytesRead === 0) break;
    await to.write(buffer, 0, bytesRead, at);
    at += bytesRead;
    written += bytesRead;
  }
  return written;
}

/** Whether [start, end) holds the same bytes in both files. */
async function sameRange(a: fs.FileHandle, b: fs.FileHandle, start: number, end: number): Promise<boolean> {
  const left = Buffer.allocUnsafe(Math.min(chunk, end - start));
  const right = Buffer.allocUnsafe(left.length);
  for (let at = start; at < end;) {
    const length = Math.min(left.length, end - at);
    const [x, y] = await Promise.all([a.read(left, 0, length, at), b.read(right, 0, length, at)]);
    if (x.bytesRead !== length || y.bytesRead !== length) return false;
    if (!left.subarray(0, length).equals(right.subarray(0, length))) return false;
    at += length;
  }
  return true;
}

const seconds = (ns: bigint): number => Number(ns / 1000n) / 1e6;

/**
 * Patches each file of `patches` in `target` from the snapshot `source` (see the file comment);
 * returns the bytes written. The parent directories' times are not touched (writing a file's bytes
 * does not change its directory).
 */
export async function patchFiles(o: {
  source: string;
  target: string;
  patches: readonly FilePatch[];
}): Promise<number> {
  let bytes = 0;
  const buffer = Buffer.allocUnsafe(chunk);
  for (const patch of o.patches) {
    const from = await fs.open(path.join(o.source, patch.relative), 'r');
    try {
      const stat = await from.stat({ bigint: true });
      const size = Number(stat.size);
      const to = await fs.open(path.join(o.target, patch.relative), 'r+');
      try {
        for (const [start, end] of mergeRanges(patch.edit.ranges, size))
          bytes += await copyRange(from, to, start, end, buffer);
        await to.truncate(size);
        await setAttributes(to, stat);
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  }
  return bytes;
}

async function setAttributes(to: fs.FileHandle, stat: BigIntStats): Promise<void> {
  // chown before chmod: changing the owner clears set-user-ID and set-group-ID bits.
  await to.chown(Number(stat.uid), Number(stat.gid));
  await to.chmod(Number(stat.mode & 0o7777n));
  await to.utimes(seconds(stat.atimeNs), seconds(stat.mtimeNs));
}

/**
 * Whether `relative` holds the same bytes in `left` and `right` over `edit`'s ranges and, when the
 * edit truncated the file, from the smallest size it truncated to up to the end (a truncation and a
 * regrowth leave bytes no range names). Both files must exist and be `size` bytes long; the caller
 * checks that. Reads only those ranges.
 */
export async function sameInEdit(o: {
  left: string;
  right: string;
  relative: string;
  edit: ContentEdit;
  size: number;
}): Promise<boolean> {
  const ranges: [number, number][] = [...o.edit.ranges];
  if (o.edit.truncatedTo.length > 0) {
    const from = Math.min(...o.edit.truncatedTo);
    ranges.push([from, o.size - from]);
  }
  const a = await fs.open(path.join(o.left, o.relative), 'r');
  try {
    const b = await fs.open(path.join(o.right, o.relative), 'r');
    try {
      for (const [start, end] of mergeRanges(ranges, o.size))
        if (!(await sameRange(a, b, start, end))) return false;
      return true;
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

/**
 * The paths of `patches` whose patched ranges, size, mode or owner differ between `source` and
 * `target` (the verification of a patch: the rest of each file was equal before and not written).
 */
export async function differingPatches(o: {
  source: string;
  target: string;
  patches: readonly FilePatch[];
}): Promise<string[]> {
  const differing: string[] = [];
  for (const patch of o.patches) {
    const a = await fs.open(path.join(o.source, patch.relative), 'r');
    try {
      const b = await fs.open(path.join(o.target, patch.relative), 'r');
      try {
        const [x, y] = await Promise.all([a.stat({ bigint: true }), b.stat({ bigint: true })]);
        let same = x.size === y.size && x.mode === y.mode && x.uid === y.uid && x.gid === y.gid;
        for (const [start, end] of same ? mergeRanges(patch.edit.ranges, Number(x.size)) : [])
          if (!(await sameRange(a, b, start, end))) {
            same = false;
            break;
          }
        if (!same) differing.push(patch.relative);
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  }
  return differing;
}
