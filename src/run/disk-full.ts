/**
 * The standby's pool filling up during the copy or the patch: such a failure is named for what it is
 * (RUN_STANDBY_DISK_FULL: which LC, disk and pool, how much is free) instead of the raw error of the
 * tool that hit it (the disk store's copy, dpkg), so that the operator knows what to free or enlarge.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, isErrno } from '../core/index.ts';
import type { LcRecord } from '../inventory/index.ts';
import type { RunContext } from './context.ts';

/** Less free space than this on the pool counts as full (a disk store keeps some for its own metadata). */
const nearlyFullBytes = 16 * 1024 * 1024;

const mib = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** Whether `error` or its causes say the device was out of space. */
function outOfSpace(error: unknown, text = ''): boolean {
  if (/No space left on device|ENOSPC|Disk quota exceeded/.test(text)) return true;
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (isErrno(e, 'ENOSPC') || /No space left on device|ENOSPC/.test(e.message)) return true;
  }
  return false;
}

/** Size and free space of the filesystem holding the LC's disk (statfs of its nearest existing directory). */
function poolSpace(c: RunContext, lc: LcRecord, disk: string): { sizeBytes: number; freeBytes: number } {
  let dir = c.host.disks.mountpoint({ lc, disk });
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const stat = fs.statfsSync(dir);
  return { sizeBytes: stat.blocks * stat.bsize, freeBytes: stat.bavail * stat.bsize };
}

/**
 * RUN_STANDBY_DISK_FULL for a failure of the standby's `disk` during `phase` when the failure says the
 * device was out of space (or `output`, e.g. the patch log, says so) or the pool is nearly full now;
 * undefined otherwise (the caller keeps its own error).
 */
export function standbyDiskFull(
  c: RunContext,
  options: {
    lc: LcRecord;
    disk: string;
    phase: 'copy' | 'patch';
    error: unknown;
    output?: string;
    /** Judge by the pool's free space alone (the error's text may quote an earlier boot's console). */
    spaceOnly?: boolean;
  },
): UnderstudyError | undefined {
  const spec = options.lc.disks.find((d) => d.name === options.disk);
  if (!spec) return undefined;
  const space = poolSpace(c, options.lc, options.disk);
  const said = !options.spaceOnly && outOfSpace(options.error, options.output);
  if (!said && space.freeBytes >= nearlyFullBytes) return undefined;
  const during =
    options.phase === 'copy'
      ? `while ${c.options.lc}'s ${options.disk} disk was copied onto it`
      : 'while the patches were applied';
  return new UnderstudyError(
    'RUN_STANDBY_DISK_FULL',
    `The standby "${options.lc.name}" ran out of space on its ${options.disk} disk (pool "${spec.pool}", ${mib(space.freeBytes)} free of ${mib(space.sizeBytes)} now) ${during}: ${(options.error as Error).message.split('\n')[0] ?? ''}`,
    {
      cause: options.error,
      hint: `The standby is discarded (its own disks are back, the partial copies removed) and the service stays on ${c.options.lc}. Free space on pool "${spec.pool}" or give ${options.lc.name} a larger pool, then run again.`,
      details: { pool: spec.pool, freeBytes: space.freeBytes, sizeBytes: space.sizeBytes },
    },
  );
}
