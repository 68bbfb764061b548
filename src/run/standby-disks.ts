/**
 * The standby's disks during a run: its own subvolume is set aside (so that discarding the standby
 * restores it exactly), the copy takes its place, and leftovers of a copy the manager crashed in are
 * removed before a copy is tried again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec, isUnderstudyError, sleep } from '../core/index.ts';

export function asidePath(diskPath: string, runId: string): string {
  return `${diskPath}.before-${runId}`;
}

async function deleteSubvolume(target: string): Promise<void> {
  // After a crash of the manager its `btrfs send` may still be ending (the kernel refuses to delete a
  // snapshot while a send reads it, with EPERM): retry for a while.
  for (let attempt = 0; fs.existsSync(target); attempt++) {
    try {
      await exec(['btrfs', 'subvolume', 'delete', target]);
    } catch (error) {
      if (
        attempt >= 50 ||
        !isUnderstudyError(error) ||
        !/Operation not permitted|send may be in progress/.test(error.message)
      )
        throw error;
      await sleep(200);
    }
  }
}

/** Moves the standby's disk aside (idempotent: done once per run). */
export async function setAside(diskPath: string, runId: string): Promise<void> {
  const aside = asidePath(diskPath, runId);
  if (fs.existsSync(aside)) {
    // Already set aside by an earlier attempt: what is at diskPath now is a partial copy.
    await deleteSubvolume(diskPath);
    return;
  }
  if (fs.existsSync(diskPath)) fs.renameSync(diskPath, aside);
}

/** Puts the standby's own disk back (undo of a copy). */
export async function restoreAside(diskPath: string, runId: string): Promise<void> {
  const aside = asidePath(diskPath, runId);
  if (!fs.existsSync(aside)) return;
  await deleteSubvolume(diskPath);
  fs.renameSync(aside, diskPath);
}

/** Deletes the standby's old disk once the run no longer needs it for an undo. */
export async function dropAside(diskPath: string, runId: string): Promise<void> {
  await deleteSubvolume(asidePath(diskPath, runId));
}

/** Removes the staging snapshots a crashed copy job left (named after the job id). */
export async function removeCopyLeftovers(dirs: readonly string[], jobId: string): Promise<void> {
  for (const dir of dirs) {
    for (const stage of [`.understudy-copy-${jobId}-src`, `.understudy-copy-${jobId}-dst`]) {
      const stageDir = path.join(dir, stage);
      if (!fs.existsSync(stageDir)) continue;
      for (const entry of fs.readdirSync(stageDir)) await deleteSubvolume(path.join(stageDir, entry));
      fs.rmSync(stageDir, { recursive: true, force: true });
    }
  }
}
