/** The btrfs subvolumes an LXC LC's disks are made of, and the image copies they are snapshots of. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, exec, spawnProcess } from '../../core/index.ts';

/** Deletes every btrfs subvolume at or under `dir` (deepest first), then the directory. */
export async function deleteSubvolumesUnder(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  const subvolumes: string[] = [];
  const walk = (current: string, depth: number): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const full = path.join(current, entry.name);
      if (fs.statSync(full).ino === 256)
        subvolumes.push(full); // a btrfs subvolume root
      else if (depth < 3) walk(full, depth + 1);
    }
  };
  walk(dir, 0);
  for (const subvolume of subvolumes.reverse()) await exec(['btrfs', 'subvolume', 'delete', subvolume]);
  fs.rmSync(dir, { recursive: true, force: true });
}

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
 * Gives every directory above `target` the search bit for others (never the read bit), so that the
 * LC's root, an unprivileged uid on the host, can reach its disks and its control channel.
 */
export function makeTraversable(target: string): void {
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const mode = fs.statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) fs.chmodSync(dir, mode | 0o001);
    if (dir === '/') break;
  }
}
