/**
 * Storage pools: btrfs filesystems that hold the LCs' disks as subvolumes. A pool lives on a block
 * device the operator names, or on a sparse loop image understudy creates in the state directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, exec, isErrno } from '../core/index.ts';
import type { Db } from '../store/index.ts';

export interface Pool {
  name: string;
  device: string | null;
  imagePath: string | null;
  mountpoint: string;
  sizeBytes: number;
}

export interface PoolUsage {
  sizeBytes: number;
  freeBytes: number;
}

interface PoolRow {
  name: string;
  device: string | null;
  image_path: string | null;
  mountpoint: string;
  size_bytes: number;
}

const rowToPool = (r: PoolRow): Pool => ({
  name: r.name,
  device: r.device,
  imagePath: r.image_path,
  mountpoint: r.mountpoint,
  sizeBytes: r.size_bytes,
});

export function listPools(db: Db): Pool[] {
  return (db.prepare('SELECT * FROM pools ORDER BY created_at, name').all() as PoolRow[]).map(rowToPool);
}

export function getPool(db: Db, name: string): Pool {
  const row = db.prepare('SELECT * FROM pools WHERE name = ?').get(name) as PoolRow | undefined;
  if (!row) {
    throw new UnderstudyError('HOST_NOT_INITIALISED', `There is no storage pool "${name}"`, {
      hint:
        name === 'main'
          ? 'Run `understudy host init` first.'
          : `Create it with \`understudy host pool-add ${name}\`.`,
    });
  }
  return rowToPool(row);
}

/** Mount table lines (device, mountpoint, fstype). Mount points with spaces are octal-escaped by the kernel. */
export function readMounts(): { source: string; target: string; fstype: string }[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [source = '', target = '', fstype = ''] = line.split(' ');
      const unescape = (s: string): string =>
        s.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      return { source: unescape(source), target: unescape(target), fstype };
    });
}

export function isMounted(mountpoint: string): boolean {
  return readMounts().some((m) => m.target === mountpoint);
}

/**
 * Attaches `imagePath` to a free loop device and returns the device. The loop device reads and
 * writes the image with direct I/O, as a pool on a block device of its own would be used: btrfs's
 * writes are not cached a second time in the host's page cache (the image's pages), and a flush
 * (every commit and fsync) writes only what btrfs wrote since, not dirty image pages left from
 * earlier bulk writes. On a filesystem that cannot do direct I/O the kernel uses buffered I/O.
 */
export async function attachLoop(imagePath: string): Promise<string> {
  return (await exec(['losetup', '--find', '--show', '--direct-io=on', imagePath])).stdout.trim();
}

/** The loop devices currently backed by the given image file. */
async function loopDevicesOf(imagePath: string): Promise<string[]> {
  const result = await exec(['losetup', '--noheadings', '--output', 'NAME', '--associated', imagePath]);
  return result.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(text.trim());
  if (!m) throw new UnderstudyError('INVALID_ARGUMENT', `"${text}" is not a size (e.g. 8G, 512M)`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[
    (m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ];
  return Math.floor(Number(m[1]) * unit);
}
export { parseSize };

async function assertUsableDevice(device: string): Promise<number> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(device);
  } catch (error) {
    if (isErrno(error, 'ENOENT'))
      throw new UnderstudyError('POOL_DEVICE_INVALID', `The block device ${device} does not exist`, {
        cause: error,
      });
    throw error;
  }
  if (!stat.isBlockDevice())
    throw new UnderstudyError('POOL_DEVICE_INVALID', `${device} is not a block device`);
  if (readMounts().some((m) => m.source === device)) {
    throw new UnderstudyError('POOL_DEVICE_INVALID', `The block device ${device} is mounted`, {
      hint: 'Unmount it, or name an unused device.',
    });
  }
  const probe = await exec(['blkid', '-o', 'value', '-s', 'TYPE', device], { okCodes: [0, 2] });
  if (probe.stdout.trim()) {
    throw new UnderstudyError(
      'POOL_DEVICE_INVALID',
      `The block device ${device} already holds a ${probe.stdout.trim()} filesystem`,
      {
        hint: 'understudy never formats a device that holds data. Wipe it yourself (wipefs -a) if it is really unused.',
      },
    );
  }
  const size = await exec(['blockdev', '--getsize64', device]);
  return Number(size.stdout.trim());
}

export interface CreatePoolOptions {
  db: Db;
  poolsDir: string;
  name: string;
  device?: string;
  sizeBytes?: number;
}

/** Creates, formats and mounts a pool and records it. Undoes its own steps when one fails. */
export async function createPool(options: CreatePoolOptions): Promise<Pool> {
  const { db, poolsDir, name } = options;
  const mountpoint = path.join(poolsDir, name);
  const undo: (() => Promise<unknown>)[] = [];
  try {
    fs.mkdirSync(mountpoint, { recursive: true, mode: 0o700 });
    let device: string;
    let imagePath: string | null = null;
    let sizeBytes: number;
    if (options.device) {
      sizeBytes = await assertUsableDevice(options.device);
      device = options.device;
    } else {
      sizeBytes = options.sizeBytes ?? 8 * 1024 ** 3;
      imagePath = path.join(poolsDir, `${name}.img`);
      const fd = fs.openSync(imagePath, 'wx', 0o600);
      undo.push(async () => fs.rmSync(imagePath as string, { force: true }));
      fs.ftruncateSync(fd, sizeBytes);
      fs.closeSync(fd);
      device = imagePath;
    }
    await exec(['mkfs.btrfs', '-q', '-L', `understudy-${name}`, device]);
    await mountPool({ name, device: options.device ?? null, imagePath, mountpoint, sizeBytes });
    undo.push(() => unmountPool({ name, device: options.device ?? null, imagePath, mountpoint, sizeBytes }));
    for (const dir of ['images', 'lcs', 'snapshots'])
      fs.mkdirSync(path.join(mountpoint, dir), { recursive: true });
    const pool: Pool = { name, device: options.device ?? null, imagePath, mountpoint, sizeBytes };
    db.prepare(
      'INSERT INTO pools (name, device, image_path, mountpoint, size_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(name, pool.device, imagePath, mountpoint, sizeBytes, new Date().toISOString());
    return pool;
  } catch (error) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw error;
  }
}

/** Mounts the pool if it is not mounted (after a host reboot the loop device must be set up again). */
export async function mountPool(pool: Pool): Promise<void> {
  if (isMounted(pool.mountpoint)) return;
  fs.mkdirSync(pool.mountpoint, { recursive: true, mode: 0o700 });
  let device = pool.device;
  if (!device) {
    if (!pool.imagePath || !fs.existsSync(pool.imagePath)) {
      throw new UnderstudyError(
        'HOST_NOT_INITIALISED',
        `The image of pool "${pool.name}" is missing (${pool.imagePath ?? 'none'})`,
        {
          hint: 'Run `understudy host destroy` and `understudy host init` again.',
        },
      );
    }
    const existing = await loopDevicesOf(pool.imagePath);
    device = existing[0] ?? (await attachLoop(pool.imagePath));
  }
  try {
    await exec(['mount', '-t', 'btrfs', '-o', 'noatime', device, pool.mountpoint]);
  } catch (error) {
    if (pool.imagePath) await exec(['losetup', '-d', device]).catch(() => undefined);
    throw error;
  }
}

export async function unmountPool(pool: Pool): Promise<void> {
  if (isMounted(pool.mountpoint)) await exec(['umount', pool.mountpoint]);
  if (pool.imagePath && fs.existsSync(pool.imagePath)) {
    for (const loop of await loopDevicesOf(pool.imagePath)) await exec(['losetup', '-d', loop]);
  }
}

/** Unmounts, detaches and deletes a pool that understudy made (never wipes an operator's device). */
export async function removePool(db: Db, pool: Pool): Promise<void> {
  await unmountPool(pool);
  if (pool.imagePath) fs.rmSync(pool.imagePath, { force: true });
  fs.rmSync(pool.mountpoint, { recursive: true, force: true });
  db.prepare('DELETE FROM pools WHERE name = ?').run(pool.name);
}

export async function poolUsage(pool: Pool): Promise<PoolUsage> {
  const stat = fs.statfsSync(pool.mountpoint);
  return { sizeBytes: stat.blocks * stat.bsize, freeBytes: stat.bavail * stat.bsize };
}

/** The block device node a mounted pool sits on (for I/O limits). */
export function poolDevice(pool: Pool): string {
  const mount = readMounts().find((m) => m.target === pool.mountpoint);
  if (!mount)
    throw new UnderstudyError(
      'HOST_NOT_INITIALISED',
      `The pool "${pool.name}" is not mounted at ${pool.mountpoint}`,
    );
  return mount.source;
}
