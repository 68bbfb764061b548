/**
 * Where an LC's disks come from: an image's btrfs subvolume, received once into the pool that holds the
 * LC's disks (a snapshot must be on the same filesystem as its source). Shared by every driver whose
 * disks are btrfs subvolumes; and which disk a path inside an LC lies on.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, exec, spawnProcess } from '../core/index.ts';
import type { LcSpec } from './driver.ts';

/**
 * The image's subvolume on the given pool: the image itself when it lives there, else a read-only
 * copy received once (btrfs send | receive) and kept, named after the image's UUID so that a rebuilt
 * image is copied again.
 */
export async function imageOnPool(options: {
  image: string;
  imagePath: string;
  pool: string;
  poolPath: string;
}): Promise<string> {
  const { image, imagePath: source, pool, poolPath } = options;
  if (source.startsWith(`${poolPath}/`)) return source;
  const show = await exec(['btrfs', 'subvolume', 'show', source]);
  const uuid = /^\s*UUID:\s*([0-9a-f-]+)/m.exec(show.stdout)?.[1]?.slice(0, 8) ?? 'unknown';
  // A received subvolume is read-only and cannot be renamed: its directory is renamed instead.
  const holder = path.join(poolPath, 'images', `${image}@${uuid}`);
  const local = path.join(holder, path.basename(source));
  if (fs.existsSync(local)) return local;
  const staging = path.join(poolPath, 'images', `.receiving-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(staging, { recursive: true });
  try {
    const receive = spawnProcess(['btrfs', 'receive', staging], { stdio: ['pipe', 'ignore', 'pipe'] });
    const send = spawnProcess(['btrfs', 'send', source], { stdio: ['ignore', 'pipe', 'pipe'] });
    send.child.stdout?.pipe(receive.child.stdin as NodeJS.WritableStream);
    const [sent, received] = await Promise.all([send.done, receive.done]);
    if (sent.exitCode !== 0 || received.exitCode !== 0) {
      throw new UnderstudyError(
        'EXEC_FAILED',
        `Copying image "${image}" to pool "${pool}" failed: ${sent.stderr}${received.stderr}`.trim(),
      );
    }
    fs.renameSync(staging, holder);
  } finally {
    for (const left of fs.existsSync(staging) ? fs.readdirSync(staging) : [])
      await exec(['btrfs', 'subvolume', 'delete', path.join(staging, left)]).catch(() => undefined);
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return local;
}

/**
 * Maps a path inside the LC to the disk mounted there (longest mount path wins) and the path on that
 * disk. Resolving inside the disk is rootfs-io's job, so links never lead out of it.
 */
export function diskAt(spec: LcSpec, lcPath: string): { disk: string; rest: string } {
  if (!lcPath.startsWith('/'))
    throw new UnderstudyError('PATH_OUTSIDE_ROOT', `"${lcPath}" is not an absolute path inside the LC`);
  const disk = [...spec.disks]
    .sort((a, b) => b.mountPath.length - a.mountPath.length)
    .find((d) => d.mountPath === '/' || lcPath === d.mountPath || lcPath.startsWith(`${d.mountPath}/`));
  if (!disk) throw new UnderstudyError('PATH_OUTSIDE_ROOT', `"${lcPath}" is on no disk of "${spec.name}"`);
  const rest = disk.mountPath === '/' ? lcPath : lcPath.slice(disk.mountPath.length) || '/';
  return { disk: disk.name, rest };
}
