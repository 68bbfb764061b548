/**
 * The copy primitives on btrfs: the source is a subvolume, its snapshots are read-only subvolumes in a
 * staging directory beside it (`.understudy-copy-<job>-src`), a send is `btrfs send [-p parent] | btrfs
 * receive` into a staging directory in the destination's pool (`.understudy-copy-<job>-dst`), and the
 * destination is a writable snapshot of the received cut (or, in snapshot mode, of the source's cut on
 * the same filesystem, verified by the kernel's comparison of the two trees instead of two tree hashes).
 *
 * With `ownTree` (send-receive mode), the destination is never a snapshot: the full pass is received
 * and made writable in the destination's place, and each later pass syncs it from the source's
 * snapshot by the changes a transid search finds after the previous snapshot's transaction
 * (transid.ts); at the end the two disks' transactions become the pair's sync bases.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnderstudyError, exec, isErrno, isUnderstudyError } from '../../core/index.ts';
import type { CopyNames, CopySession, SendOptions, SendResult } from '../copy-session.ts';
import { formatBytes } from '../history.ts';
import { hashTree } from '../tree-hash.ts';
import type { CopyMode } from '../types.ts';
import {
  checkSpace,
  deleteSubvolume,
  filesystemId,
  freeBytes,
  isBtrfs,
  isSubvolume,
  removeStagingDir,
  snapshot,
  transfer,
  usedBytes,
} from './btrfs.ts';
import { changedPaths, withoutTransient } from './change-set.ts';
import { historyChangeOf, historyChangesOfInodes } from './send-history.ts';
import { SendStreamParser } from './send-stream.ts';
import { rsyncPaths, rsyncWhole } from './sync-disk.ts';
import type { TransidBase } from '../sync-bases.ts';
import { createdIn, markOf, syncByTransid, withDirectories } from './transid.ts';

const NAME_PATTERN = /^[A-Za-z0-9][\w.-]{0,99}$/;

export interface BtrfsCopyOptions {
  /** Host path of the source disk's subvolume. Never modified. */
  source: string;
  /** The copy appears as the writable subvolume `poolPath/name`, which must not exist yet. */
  destination: { poolPath: string; name: string };
  jobId: string;
  /** Default `auto`: `snapshot` on one filesystem, `send-receive` across two. */
  mode?: 'auto' | CopyMode;
  /**
   * Keep the snapshots of the cut (the source's and the one the destination is a clone of) as the
   * bases of later incremental syncs: they stay in the staging directories, and `finish` hands them
   * to `adopt` (default: they are returned, and the caller owns them).
   */
  keepSyncBase?: boolean;
  adopt?: (base: { source: string; destination: string }) => Promise<void>;
  /** See OpenCopyOptions.ownTree; ignored in snapshot mode. */
  ownTree?: boolean;
  /** With `ownTree` and `keepSyncBase`: records the two disks' transactions at the cut as their bases. */
  adoptTransids?: (bases: { source: TransidBase; destination: TransidBase }) => Promise<void>;
}

async function resolveMode(o: BtrfsCopyOptions): Promise<CopyMode> {
  const sameFs = (await filesystemId(o.source)) === (await filesystemId(o.destination.poolPath));
  const mode = o.mode ?? 'auto';
  if (mode === 'auto') return sameFs ? 'snapshot' : 'send-receive';
  if (mode === 'snapshot' && !sameFs) {
    throw new UnderstudyError(
      'DISK_COPY_DESTINATION_INVALID',
      `Snapshot mode needs ${o.destination.poolPath} on the same btrfs filesystem as ${o.source}`,
      { hint: 'Use mode send-receive (or auto) to copy to another pool.' },
    );
  }
  return mode;
}

async function validate(o: BtrfsCopyOptions): Promise<void> {
  if (!(await isSubvolume(o.source))) {
    throw new UnderstudyError('DISK_COPY_SOURCE_INVALID', `${o.source} is not a btrfs subvolume`);
  }
  const { poolPath, name } = o.destination;
  if (!NAME_PATTERN.test(name)) {
    throw new UnderstudyError('INVALID_ARGUMENT', `Invalid destination name ${JSON.stringify(name)}`, {
      hint: 'Use letters, digits, ".", "_" and "-".',
    });
  }
  try {
    if (!(await fs.stat(poolPath)).isDirectory() || !(await isBtrfs(poolPath))) throw new Error('not btrfs');
  } catch (error) {
    throw new UnderstudyError(
      'DISK_COPY_DESTINATION_INVALID',
      `The destination pool ${poolPath} is not a directory on a btrfs filesystem`,
      { cause: error },
    );
  }
  const target = path.join(poolPath, name);
  const exists = await fs.lstat(target).then(
    () => true,
    () => false,
  );
  if (exists)
    throw new UnderstudyError('DISK_COPY_DESTINATION_INVALID', `The destination ${target} already exists`, {
      hint: 'Remove it, or choose another name.',
    });
}

/** See CopyPrimitives.removeCopy. */
export async function removeBtrfsCopy(
  names: Pick<CopyNames, 'destination' | 'destinationStage'> & { sourceStage: string | null },
): Promise<void> {
  if (names.destinationStage) await removeStagingDir(names.destinationStage);
  if (names.sourceStage) await removeStagingDir(names.sourceStage);
  await deleteSubvolume(names.destination);
}

/** Checks both sides and picks the mode (creates nothing); see CopyPrimitives.openCopy. */
export async function openBtrfsCopy(o: BtrfsCopyOptions): Promise<CopySession> {
  await validate(o);
  const mode = await resolveMode(o);
  const poolPath = path.resolve(o.destination.poolPath);
  const source = path.resolve(o.source);
  const sourceStage = path.join(path.dirname(source), `.understudy-copy-${o.jobId}-src`);
  const destinationStage = path.join(poolPath, `.understudy-copy-${o.jobId}-dst`);
  const names: CopyNames = {
    source,
    destination: path.join(poolPath, o.destination.name),
    sourceStage,
    destinationStage: mode === 'send-receive' ? destinationStage : null,
  };
  const ofSource = (name: string): string => path.join(sourceStage, name);
  const received = (name: string): string => path.join(destinationStage, name);
  /** The snapshot the destination is cloned from. */
  const cloneSource = (name: string): string => (mode === 'snapshot' ? ofSource(name) : received(name));
  const ownTree = o.ownTree === true && mode === 'send-receive';
  /** ownTree: the destination is in place (received whole), so a failure removes it. */
  let destinationMade = false;
  const labels = { source, target: names.destination };
  /**
   * ownTree: the destination, which holds the source's snapshot `parent`, brought to snapshot
   * `snapshot` from the changes found in it after the transaction before `parent`'s (those of
   * `parent`'s own transaction are carried again: a change the snapshot holds is never missed).
   */
  const passByTransid = async (s: SendOptions & { parent: string }): Promise<SendResult> => {
    const started = performance.now();
    const from = ofSource(s.snapshot);
    const onChange = s.onChange;
    let bytes: number;
    try {
      const outcome = await syncByTransid({
        source: from,
        target: names.destination,
        since: (await createdIn(ofSource(s.parent))) - 1,
        ...(onChange
          ? { onChanges: (inodes) => historyChangesOfInodes(inodes).forEach((change) => onChange(change)) }
          : {}),
      });
      if (!outcome.overflow) bytes = outcome.bytes;
      else if (outcome.paths) {
        const paths = withDirectories(outcome.paths);
        bytes = await rsyncPaths({ source: from, target: names.destination, paths, labels });
      } else bytes = (await rsyncWhole({ source: from, target: names.destination, labels })).bytes;
    } catch (error) {
      // A copy fails as a copy (the partial destination is then removed with the job's snapshots).
      if (!isUnderstudyError(error, 'DISK_SYNC_FAILED')) throw error;
      throw new UnderstudyError(
        'DISK_COPY_FAILED',
        `Copy of ${source} to ${names.destination} failed in pass ${s.snapshot}: ${error.message}`,
        { cause: error, details: { ...error.details } },
      );
    }
    s.onBytes?.(bytes);
    return { bytes, durationMs: performance.now() - started };
  };
  return {
    mode,
    names,
    async prepare() {
      await fs.mkdir(sourceStage);
      if (mode === 'send-receive') await fs.mkdir(destinationStage);
    },
    snapshot: (name) => snapshot({ source, target: ofSource(name), readOnly: true }),
    size: (name) => usedBytes(ofSource(name)),
    checkSpace: (bytes) => checkSpace(poolPath, bytes),
    async send(s: SendOptions): Promise<SendResult> {
      if (ownTree && s.parent) return passByTransid({ ...s, parent: s.parent });
      const onChange = s.onChange;
      // The stream of an incremental send is parsed as it passes: its commands are the history.
      const parser = onChange
        ? new SendStreamParser((command) => {
            const change = historyChangeOf(command);
            if (change) onChange(change);
          })
        : undefined;
      const result = await transfer({
        snapshot: ofSource(s.snapshot),
        ...(s.parent ? { parent: ofSource(s.parent) } : {}),
        receiveDir: destinationStage,
        ...(s.signal ? { signal: s.signal } : {}),
        ...(parser ? { onChunk: (chunk: Buffer) => parser.push(chunk) } : {}),
        ...(s.onBytes ? { onBytes: s.onBytes } : {}),
      });
      parser?.end();
      if (ownTree) {
        // The full pass is the destination itself: writable (which forgets where it was received
        // from) and in place.
        await exec(['btrfs', 'property', 'set', '-f', '-ts', received(s.snapshot), 'ro', 'false']);
        await fs.rename(received(s.snapshot), names.destination);
        destinationMade = true;
      }
      return result;
    },
    async deleteSnapshot(name) {
      await deleteSubvolume(ofSource(name));
      if (mode === 'send-receive') await deleteSubvolume(received(name));
    },
    async flush() {
      await exec(['btrfs', 'filesystem', 'sync', source]);
    },
    async clone(name) {
      if (ownTree) {
        await exec(['touch', '--no-dereference', '-r', ofSource(name), names.destination]);
        return;
      }
      await snapshot({ source: cloneSource(name), target: names.destination, readOnly: false });
      // btrfs receive creates new files under temporary names in the root directory and renames them,
      // which changes the root's times; the stream only restores them when the source root changed.
      if (mode === 'send-receive')
        await exec(['touch', '--no-dereference', '-r', ofSource(name), names.destination]);
    },
    hash: (what) => hashTree(what === 'destination' ? names.destination : ofSource(what.snapshot)),
    ...(mode === 'snapshot'
      ? {
          // The kernel compares the two trees (a metadata-only incremental send of a read-only
          // snapshot of the destination against the cut): its cost follows the difference, and no
          // file data is read. Every path the stream names differs, times-only changes included.
          async diffClone(name: string, limit: number): Promise<string[]> {
            const frozen = ofSource(`${name}-clone`);
            await snapshot({ source: names.destination, target: frozen, readOnly: true });
            try {
              const named = [...(await changedPaths(ofSource(name), frozen)).paths].sort();
              return (await withoutTransient(named, [ofSource(name), frozen])).slice(0, limit);
            } finally {
              await deleteSubvolume(frozen);
            }
          },
        }
      : {}),
    async finish(cut) {
      if (ownTree) {
        if (o.keepSyncBase) {
          // The source's changes after the cut have newer transactions than the cut's snapshot;
          // nobody has written the destination since its last pass.
          const [cutIn, sourceMark, destination] = await Promise.all([
            createdIn(ofSource(cut)),
            markOf(source),
            markOf(names.destination),
          ]);
          await o.adoptTransids?.({ source: { uuid: sourceMark.uuid, transid: cutIn - 1 }, destination });
        }
        await removeStagingDir(sourceStage);
        await removeStagingDir(destinationStage);
        return undefined;
      }
      if (!o.keepSyncBase) {
        await removeStagingDir(sourceStage);
        await removeStagingDir(destinationStage);
        return undefined;
      }
      const base = { source: ofSource(cut), destination: cloneSource(cut) };
      await o.adopt?.(base);
      return base;
    },
    async discard({ destinationCreated }) {
      const errors: unknown[] = [];
      if (destinationCreated || destinationMade)
        await deleteSubvolume(names.destination).catch((e: unknown) => errors.push(e));
      await removeStagingDir(destinationStage).catch((e: unknown) => errors.push(e));
      await removeStagingDir(sourceStage).catch((e: unknown) => errors.push(e));
      return errors;
    },
    async explainFailure(error) {
      // An ENOSPC from btrfs receive (or from a pass's copy or its rsync) becomes POOL_FULL naming
      // the pool and the space missing.
      const noSpace =
        isErrno(error, 'ENOSPC') ||
        (isUnderstudyError(error, 'DISK_COPY_FAILED') &&
          /No space left on device/i.test(String(error.details.stderr ?? error.message)));
      if (!noSpace) return error;
      const needed = await usedBytes(source).catch(() => 0);
      const free = await freeBytes(poolPath).catch(() => 0);
      const missing = Math.max(0, needed - free);
      return new UnderstudyError(
        'POOL_FULL',
        `The destination pool ${poolPath} ran out of space during the copy of ${source}: about ${formatBytes(missing || needed)} missing`,
        {
          cause: error,
          details: { pool: poolPath, freeBytes: free, neededBytes: needed, missingBytes: missing },
        },
      );
    },
  };
}
