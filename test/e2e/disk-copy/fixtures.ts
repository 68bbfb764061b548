/**
 * Real fixtures for the disk copy: btrfs pools on sparse loop images, trees with every kind of entry,
 * and a writer process in its own freezer cgroup standing in for a running LC. Every name carries a
 * random tag; every cleanup is idempotent and runs even when the test fails.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exec, sleep, spawnProcess } from '../../../src/core/index.ts';
import { createCgroup, type Cgroup } from '../../../src/disk-copy/index.ts';
import { attachLoop } from '../../../src/host/index.ts';

export function tag(): string {
  return randomBytes(2).toString('hex');
}

export interface Pool {
  /** Mount point (a btrfs filesystem). */
  path: string;
  device: string;
  cleanup(): Promise<void>;
}

/**
 * A btrfs filesystem of `sizeMb` on a sparse loop image, mounted under a fresh temp dir.
 * `mountOptions` (e.g. `['noatime']`, as the host's pools are mounted: src/host/pool.ts) are passed
 * to mount; without them the kernel's defaults apply (relatime). `loop`: the loop device reads and
 * writes the image with direct I/O, as the host's pools do (`attachLoop`, the default), or through
 * the host's page cache (`buffered`).
 */
export async function createPool(
  sizeMb: number,
  label = 'pool',
  options: { mountOptions?: string[]; loop?: 'direct' | 'buffered' } = {},
): Promise<Pool> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `us-dc-${label}-${tag()}-`));
  const image = path.join(dir, 'pool.img');
  const mountPoint = path.join(dir, 'mnt');
  await fs.mkdir(mountPoint);
  await exec(['truncate', '-s', `${sizeMb}M`, image]);
  let device = '';
  let mounted = false;
  const cleanup = async (): Promise<void> => {
    if (mounted) {
      await exec(['umount', mountPoint], { okCodes: [0, 32] }).catch(() =>
        exec(['umount', '-l', mountPoint], { okCodes: [0, 32] }),
      );
      mounted = false;
    }
    if (device) {
      await exec(['losetup', '-d', device], { okCodes: [0, 1] });
      device = '';
    }
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    device =
      options.loop === 'buffered'
        ? (await exec(['losetup', '--find', '--show', image])).stdout.trim()
        : await attachLoop(image);
    await exec(['mkfs.btrfs', '-q', '-f', device]);
    const mountOptions = options.mountOptions ?? [];
    await exec(['mount', ...(mountOptions.length ? ['-o', mountOptions.join(',')] : []), device, mountPoint]);
    mounted = true;
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { path: mountPoint, device, cleanup };
}

export async function createSubvolume(target: string): Promise<void> {
  await exec(['btrfs', 'subvolume', 'create', target]);
}

/**
 * Fills `root` with a tree that exercises the hash: nested dirs, small and large files (random
 * data), a sparse file, symlinks, hard links, a fifo, odd modes and owners, extended attributes.
 */
export async function fillTree(
  root: string,
  options: { largeMb?: number; smallFiles?: number } = {},
): Promise<void> {
  const smallFiles = options.smallFiles ?? 200;
  for (let i = 0; i < smallFiles; i += 1) {
    const dir = path.join(root, 'etc', `d${i % 10}`);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, `f${i}.conf`), randomBytes(100 + ((i * 97) % 5000)));
  }
  await fs.mkdir(path.join(root, 'var', 'lib', 'app'), { recursive: true });
  if (options.largeMb) {
    await exec(
      [
        'dd',
        'if=/dev/urandom',
        `of=${path.join(root, 'var', 'lib', 'app', 'large.bin')}`,
        'bs=1M',
        `count=${options.largeMb}`,
        'status=none',
      ],
      { timeoutMs: 600_000 },
    );
  }
  await exec(['truncate', '-s', '64M', path.join(root, 'var', 'lib', 'app', 'sparse.img')]);
  await fs.writeFile(path.join(root, 'var', 'lib', 'app', 'sparse-tail'), 'x');
  await fs.symlink('../etc/d1/f1.conf', path.join(root, 'var', 'link-to-conf'));
  await fs.symlink('/nonexistent/target', path.join(root, 'var', 'dangling'));
  await fs.link(path.join(root, 'etc', 'd2', 'f2.conf'), path.join(root, 'var', 'hardlink.conf'));
  await exec(['mkfifo', path.join(root, 'var', 'fifo')]);
  await fs.chmod(path.join(root, 'etc', 'd3', 'f3.conf'), 0o4751);
  await fs.chown(path.join(root, 'etc', 'd4', 'f4.conf'), 1234, 5678);
  await exec([
    'setfattr',
    '-n',
    'user.origin',
    '-v',
    'understudy-test',
    path.join(root, 'etc', 'd5', 'f5.conf'),
  ]);
  await exec(['setfattr', '-n', 'user.dir', '-v', '0x00ff10', path.join(root, 'var')]);
}

export interface Writer {
  pid: number;
  /** Rounds of the loop done so far (from the newest file.N it created). */
  rounds(): Promise<number>;
  cgroup: Cgroup;
  /** Kills the writer and everything in its cgroup (by pid), then removes the cgroup. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The writer inside the "LC": appends, overwrites in place, writes a big file in place (bigMb MiB per
 * round, 0 for none), creates a file under a temporary name and renames it into place, deletes old
 * files. $1 dir, $2 bigMb, $3 pause (s), $4 slots of bigMb in big.bin (its working set).
 */
const writerScript = `
set -u
d=$1; big=$2; pause=$3; slots=$4
mkdir -p "$d/w"
i=0
while :; do
  i=$((i+1))
  head -c 1000 /dev/urandom >> "$d/w/append.log"
  dd if=/dev/urandom of="$d/w/inplace.bin" bs=4096 count=1 seek=$((i % 64)) conv=notrunc status=none
  if [ "$big" -gt 0 ]; then
    dd if=/dev/urandom of="$d/w/big.bin" bs=1M count="$big" seek=$(( (i % slots) * big )) conv=notrunc status=none
  fi
  echo "$i" > "$d/w/new.$i.tmp" && mv "$d/w/new.$i.tmp" "$d/w/file.$i"
  if [ $i -gt 10 ]; then rm -f "$d/w/file.$((i-10))"; fi
  sleep "$pause"
done
`;

export async function startWriter(options: {
  dir: string;
  bigMb?: number;
  pauseSeconds?: number;
  slots?: number;
}): Promise<Writer> {
  const cgroup = await createCgroup(`us-dc-writer-${tag()}${tag()}`);
  // The shell joins the cgroup before it starts the script, so that no write escapes the freezer.
  const join = 'for f in $US_PROCS; do echo $$ > "$f"; done; exec sh -c "$0" writer "$@"';
  let proc;
  try {
    proc = spawnProcess(
      [
        'sh',
        '-c',
        join,
        writerScript,
        options.dir,
        String(options.bigMb ?? 0),
        String(options.pauseSeconds ?? 0.02),
        String(options.slots ?? 8),
      ],
      {
        env: { US_PROCS: cgroup.procsFiles.join(' ') },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
  } catch (error) {
    await cgroup.remove();
    throw error;
  }
  const pid = proc.child.pid ?? 0;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await cgroup.freezer.thaw().catch(() => undefined);
    for (let round = 0; round < 50; round += 1) {
      const pids = new Set<number>();
      for (const file of cgroup.procsFiles) {
        const text = await fs.readFile(file, 'utf8').catch(() => '');
        for (const p of text.split('\n').filter(Boolean)) pids.add(Number(p));
      }
      if (round === 0) pids.add(pid);
      if (pids.size === 0) break;
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await sleep(20);
    }
    await proc.done;
    await cgroup.remove();
  };
  // Wait until the writer has written something, so the copy starts against a live writer.
  for (let i = 0; i < 100; i += 1) {
    if (
      await fs.stat(path.join(options.dir, 'w', 'append.log')).then(
        () => true,
        () => false,
      )
    )
      break;
    await sleep(20);
  }
  const rounds = async (): Promise<number> => {
    const names = await fs.readdir(path.join(options.dir, 'w')).catch(() => [] as string[]);
    return Math.max(
      0,
      ...names
        .map((n) => /^file\.(\d+)$/.exec(n)?.[1])
        .filter((n): n is string => n !== undefined)
        .map(Number),
    );
  };
  return { pid, cgroup, rounds, stop };
}
