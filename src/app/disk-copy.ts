/**
 * A live copy of one LC's disk onto another's (`disk copy`, `POST /v1/disk-copies`): the target LC
 * must be stopped; its old disk is kept aside until the copy is in its place, and put back when the
 * copy fails or is cancelled. A running source is frozen for the cut and throttled when the copy
 * does not converge.
 */
import { randomBytes } from 'node:crypto';
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { HostContext } from '../host/index.ts';
import { diskRole, getLc, systemRole } from '../inventory/index.ts';
import {
  copyLive,
  type CopyDiskOptions,
  type CopyProgress,
  type CopyResult,
  type Freezer,
} from '../disk-copy/index.ts';

const noFreeze: Freezer = { async freeze() {}, async thaw() {} };

export interface LcDiskCopyOptions {
  from: string;
  disk: string;
  to: string;
  /** Default: the same name as `disk`. */
  toDisk?: string;
  mode?: CopyDiskOptions['mode'];
  policy?: CopyDiskOptions['policy'];
  verify?: boolean;
  onProgress?: (progress: CopyProgress) => void;
  signal?: AbortSignal;
}

export async function copyLcDisk(db: Db, host: HostContext, options: LcDiskCopyOptions): Promise<CopyResult> {
  const from = getLc(db, options.from);
  const to = getLc(db, options.to);
  const targetDisk = options.toDisk ?? options.disk;
  const source = { lc: from, disk: options.disk };
  const target = { lc: to, disk: targetDisk };
  if ((await host.driver.status(to.name)).state !== 'stopped') {
    throw new UnderstudyError(
      'LC_RUNNING',
      `${to.name} must be stopped before its disk ${targetDisk} is replaced by a copy`,
      { hint: `understudy lc stop ${to.name}` },
    );
  }
  const running = (await host.driver.status(from.name)).state !== 'stopped';
  const device = host.disks.device(source);
  const jobId = randomBytes(4).toString('hex');
  // The target's old content is kept aside until the copy is in its place.
  const tag = `replaced-${jobId}`;
  await host.disks.setAside(target, tag);
  let result: CopyResult;
  try {
    result = await copyLive(host.disks, {
      from: source,
      to: target,
      jobId,
      freezer: running
        ? { freeze: () => host.driver.freeze(from.name), thaw: () => host.driver.thaw(from.name) }
        : noFreeze,
      ...(running
        ? {
            throttle: {
              limit: (bps: number) => host.driver.setWriteLimit(from.name, device, bps),
              lift: () => host.driver.setWriteLimit(from.name, device, null),
            },
          }
        : {}),
      mode: options.mode,
      // A data disk's copy is a tree of its own, as a patch run makes it (its switches commit it).
      ownTree: from.disks.some((d) => d.name === options.disk && diskRole(d) !== systemRole),
      policy: options.policy,
      verify: options.verify === true,
      db,
      label: `${from.name}/${options.disk} → ${to.name}/${targetDisk}`,
      onProgress: options.onProgress,
      signal: options.signal,
    });
  } catch (error) {
    await host.disks.restoreAside(target, tag);
    throw error;
  }
  await host.disks.dropAside(target, tag);
  return result;
}
