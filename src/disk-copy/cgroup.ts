/**
 * A freezer and a write throttle bound to one cgroup, for copying a disk whose writers are not an LC
 * of the driver (tests, benchmarks, `disk copy-path --freeze-cgroup`). Works on cgroup v1 (freezer +
 * blkio hierarchies, as on this host) and v2 (cgroup.freeze + io.max). The namespace driver has its
 * own implementation behind PartitioningDriver.freeze/thaw/setWriteLimit.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnderstudyError, isErrno, sleep } from '../core/index.ts';
import type { Freezer, Throttle } from './types.ts';

const CGROUP_ROOT = '/sys/fs/cgroup';

export type CgroupVersion = 1 | 2;

export async function cgroupVersion(): Promise<CgroupVersion> {
  try {
    await fs.access(path.join(CGROUP_ROOT, 'cgroup.controllers'));
    return 2;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return 1;
    throw error;
  }
}

export interface Cgroup {
  name: string;
  version: CgroupVersion;
  /** The cgroup.procs files a process must be written to (one per v1 hierarchy, one for v2). */
  procsFiles: string[];
  addProcess(pid: number): Promise<void>;
  freezer: Freezer;
  /** A throttle of this cgroup's writes to the block device `device` (e.g. /dev/loop3). */
  throttle(device: string): Throttle;
  /** Thaws, then removes the cgroup; its processes must have exited. Idempotent. */
  remove(): Promise<void>;
}

async function writeControl(file: string, value: string): Promise<void> {
  await fs.writeFile(file, value);
}

async function readControl(file: string): Promise<string> {
  return (await fs.readFile(file, 'utf8')).trim();
}

/** "MAJ:MIN" of a block device (via sysfs; a partition or loop device alike). */
export async function deviceNumber(device: string): Promise<string> {
  const real = await fs.realpath(device);
  return readControl(path.join('/sys/class/block', path.basename(real), 'dev'));
}

/** Creates the cgroup `name` (unique per run: the caller adds a random tag). */
export async function createCgroup(name: string): Promise<Cgroup> {
  if (!/^[\w.-]+$/.test(name)) throw new UnderstudyError('INVALID_ARGUMENT', `Invalid cgroup name ${name}`);
  const version = await cgroupVersion();
  const freezerDir = version === 1 ? path.join(CGROUP_ROOT, 'freezer', name) : path.join(CGROUP_ROOT, name);
  const ioDir = version === 1 ? path.join(CGROUP_ROOT, 'blkio', name) : freezerDir;
  if (version === 2) {
    // io.max needs the io controller enabled for the children of the root.
    await writeControl(path.join(CGROUP_ROOT, 'cgroup.subtree_control'), '+io').catch(() => undefined);
  }
  await fs.mkdir(freezerDir);
  if (ioDir !== freezerDir) await fs.mkdir(ioDir);
  const procsFiles = [...new Set([path.join(freezerDir, 'cgroup.procs'), path.join(ioDir, 'cgroup.procs')])];

  const freezer = await existingCgroupFreezer(freezerDir);

  const throttle = (device: string): Throttle => ({
    async limit(bytesPerSecond: number) {
      const dev = await deviceNumber(device);
      const bps = String(Math.max(1, Math.round(bytesPerSecond)));
      if (version === 1)
        await writeControl(path.join(ioDir, 'blkio.throttle.write_bps_device'), `${dev} ${bps}`);
      else await writeControl(path.join(ioDir, 'io.max'), `${dev} wbps=${bps}`);
    },
    async lift() {
      const dev = await deviceNumber(device);
      if (version === 1) await writeControl(path.join(ioDir, 'blkio.throttle.write_bps_device'), `${dev} 0`);
      else await writeControl(path.join(ioDir, 'io.max'), `${dev} wbps=max`);
    },
  });

  return {
    name,
    version,
    procsFiles,
    async addProcess(pid) {
      for (const file of procsFiles) await writeControl(file, String(pid));
    },
    freezer,
    throttle,
    async remove() {
      for (const dir of [...new Set([freezerDir, ioDir])]) {
        try {
          if (dir === freezerDir) await freezer.thaw();
          // A killed process leaves its cgroup a moment later.
          for (let attempt = 0; ; attempt += 1) {
            try {
              await fs.rmdir(dir);
              break;
            } catch (error) {
              if (!isErrno(error, 'EBUSY') || attempt >= 200) throw error;
              await sleep(10);
            }
          }
        } catch (error) {
          if (!isErrno(error, 'ENOENT')) throw error;
        }
      }
    },
  };
}

/**
 * A freezer bound to an existing cgroup directory: a v1 freezer cgroup (has freezer.state) or a v2
 * cgroup (has cgroup.freeze), e.g. /sys/fs/cgroup/freezer/myservice.
 */
export async function existingCgroupFreezer(dir: string): Promise<Freezer> {
  const v1 = await fs.access(path.join(dir, 'freezer.state')).then(
    () => true,
    () => false,
  );
  const v2 =
    !v1 &&
    (await fs.access(path.join(dir, 'cgroup.freeze')).then(
      () => true,
      () => false,
    ));
  if (!v1 && !v2) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `${dir} is not a freezer cgroup (no freezer.state or cgroup.freeze)`,
      {
        hint: 'Name a cgroup v1 freezer directory (/sys/fs/cgroup/freezer/…) or a cgroup v2 directory.',
      },
    );
  }
  const isFrozen = async (): Promise<boolean> =>
    v1
      ? (await readControl(path.join(dir, 'freezer.state'))) === 'FROZEN'
      : /^frozen 1$/m.test(await readControl(path.join(dir, 'cgroup.events')));
  const setFrozen = (frozen: boolean): Promise<void> =>
    v1
      ? writeControl(path.join(dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED')
      : writeControl(path.join(dir, 'cgroup.freeze'), frozen ? '1' : '0');
  return {
    // A v1 freezer can stay FREEZING while a vfork() parent waits for a child frozen before exec:
    // after 250 ms, thaw for a moment (the child execs) and freeze again; give up after 20 tries.
    async freeze() {
      for (let attempt = 1; attempt <= 20; attempt += 1) {
        await setFrozen(true);
        const deadline = performance.now() + 250;
        while (performance.now() < deadline) {
          if (await isFrozen()) return;
          await sleep(1);
        }
        await setFrozen(false);
        await sleep(10);
      }
      throw new UnderstudyError(
        'DISK_COPY_FREEZE_FAILED',
        `The cgroup ${dir} did not freeze (20 attempts of 250 ms); it was thawed again`,
      );
    },
    thaw: () => setFrozen(false),
  };
}
