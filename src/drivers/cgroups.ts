/**
 * CPU, memory, freezer and I/O limits of an LC through cgroups: v2 (unified hierarchy) when the host
 * mounts it with controllers, otherwise v1 (one hierarchy per controller), which this build machine uses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, isErrno, sleep } from '../core/index.ts';

const root = '/sys/fs/cgroup';
const v1Controllers = ['cpu', 'cpuset', 'memory', 'freezer', 'blkio', 'pids'] as const;

export type CgroupVersion = 1 | 2;

export function cgroupVersion(): CgroupVersion {
  return fs.existsSync(path.join(root, 'cgroup.controllers')) ? 2 : 1;
}

export interface CgroupLimits {
  cpus: string;
  cpuSharePercent: number;
  memoryMb: number;
  pidsMax?: number;
}

function write(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (error) {
    throw new UnderstudyError(
      'INTERNAL',
      `Could not write "${value}" to ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function read(file: string): string {
  return fs.readFileSync(file, 'utf8').trim();
}

/** One LC's cgroup(s). `name` must be unique on the host (it includes the host tag). */
export class LcCgroup {
  readonly version: CgroupVersion;
  constructor(
    readonly name: string,
    version?: CgroupVersion,
  ) {
    this.version = version ?? cgroupVersion();
  }

  private dir(controller: (typeof v1Controllers)[number]): string {
    return this.version === 2 ? path.join(root, this.name) : path.join(root, controller, this.name);
  }

  /** The files a process writes its pid into to join every hierarchy of this LC. */
  procsFiles(): string[] {
    if (this.version === 2) return [path.join(root, this.name, 'cgroup.procs')];
    return v1Controllers
      .filter((c) => fs.existsSync(path.join(root, c)))
      .map((c) => path.join(this.dir(c), 'cgroup.procs'));
  }

  exists(): boolean {
    return fs.existsSync(this.version === 2 ? path.join(root, this.name) : this.dir('memory'));
  }

  /** Creates the cgroup(s) and applies the limits. Idempotent. */
  apply(limits: CgroupLimits): void {
    const quotaUs = Math.round((limits.cpuSharePercent / 100) * 100_000);
    const memoryBytes = String(limits.memoryMb * 1024 * 1024);
    if (this.version === 2) {
      const subtree = path.join(root, 'cgroup.subtree_control');
      for (const c of ['cpu', 'cpuset', 'memory', 'io', 'pids']) {
        if (!read(subtree).split(' ').includes(c)) {
          try {
            fs.writeFileSync(subtree, `+${c}`);
          } catch {
            // A controller the kernel lacks; its limits cannot be enforced and are skipped below.
          }
        }
      }
      const dir = path.join(root, this.name);
      fs.mkdirSync(dir, { recursive: true });
      write(path.join(dir, 'cpu.max'), `${quotaUs} 100000`);
      write(path.join(dir, 'cpuset.cpus'), limits.cpus);
      write(path.join(dir, 'memory.max'), memoryBytes);
      if (fs.existsSync(path.join(dir, 'memory.swap.max'))) write(path.join(dir, 'memory.swap.max'), '0');
      if (limits.pidsMax) write(path.join(dir, 'pids.max'), String(limits.pidsMax));
      return;
    }
    for (const c of v1Controllers) {
      if (fs.existsSync(path.join(root, c))) fs.mkdirSync(this.dir(c), { recursive: true });
    }
    write(path.join(this.dir('cpu'), 'cpu.cfs_period_us'), '100000');
    write(path.join(this.dir('cpu'), 'cpu.cfs_quota_us'), String(quotaUs));
    write(path.join(this.dir('cpuset'), 'cpuset.cpus'), limits.cpus);
    write(path.join(this.dir('cpuset'), 'cpuset.mems'), read(path.join(root, 'cpuset', 'cpuset.mems')));
    // memsw >= memory is required, so lower order matters when shrinking; set memory first on create.
    write(path.join(this.dir('memory'), 'memory.limit_in_bytes'), memoryBytes);
    const memsw = path.join(this.dir('memory'), 'memory.memsw.limit_in_bytes');
    if (fs.existsSync(memsw)) write(memsw, memoryBytes);
    if (limits.pidsMax && fs.existsSync(this.dir('pids')))
      write(path.join(this.dir('pids'), 'pids.max'), String(limits.pidsMax));
  }

  /** Pids of every process in the LC. */
  pids(): number[] {
    const file =
      this.version === 2
        ? path.join(root, this.name, 'cgroup.procs')
        : path.join(this.dir('memory'), 'cgroup.procs');
    try {
      return read(file).split('\n').filter(Boolean).map(Number);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
  }

  /**
   * Freezes every process of the LC. On cgroup v1 a freeze can stay FREEZING (a process in vfork()
   * waiting for a child that froze first): each attempt is bounded, then thawed and tried again.
   * Throws when the LC could not be frozen; it is thawed then.
   */
  async freeze(options: { attemptMs?: number; attempts?: number } = {}): Promise<void> {
    const attemptMs = options.attemptMs ?? 2000;
    const attempts = options.attempts ?? 5;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.version === 2) write(path.join(root, this.name, 'cgroup.freeze'), '1');
      else write(path.join(this.dir('freezer'), 'freezer.state'), 'FROZEN');
      const deadline = Date.now() + attemptMs;
      while (Date.now() < deadline) {
        if (this.isFrozen()) return;
        await sleep(1);
      }
      await this.thaw();
      await sleep(50 * attempt);
    }
    throw new UnderstudyError(
      'INTERNAL',
      `The processes of cgroup ${this.name} could not be frozen in ${attempts} attempts of ${attemptMs} ms; they were left running`,
      {
        hint: 'A process of the LC may be stuck in the kernel; try again, or check `ps` inside the LC.',
      },
    );
  }

  async thaw(): Promise<void> {
    if (this.version === 2) write(path.join(root, this.name, 'cgroup.freeze'), '0');
    else write(path.join(this.dir('freezer'), 'freezer.state'), 'THAWED');
  }

  isFrozen(): boolean {
    if (this.version === 2) return read(path.join(root, this.name, 'cgroup.events')).includes('frozen 1');
    return read(path.join(this.dir('freezer'), 'freezer.state')) === 'FROZEN';
  }

  /** Limits write bandwidth on a block device ("maj:min"), or lifts the limit (null). */
  setWriteLimit(majMin: string, bytesPerSecond: number | null): void {
    if (this.version === 2) {
      write(path.join(root, this.name, 'io.max'), `${majMin} wbps=${bytesPerSecond ?? 'max'}`);
      return;
    }
    write(
      path.join(this.dir('blkio'), 'blkio.throttle.write_bps_device'),
      `${majMin} ${bytesPerSecond ?? 0}`,
    );
  }

  usage(): {
    memoryBytes: number;
    memoryLimitBytes: number;
    cpuQuotaPercent: number;
    cpus: string;
    pids: number;
    oomKills: number;
  } {
    if (this.version === 2) {
      const dir = path.join(root, this.name);
      const [quota = 'max'] = read(path.join(dir, 'cpu.max')).split(' ');
      const events = read(path.join(dir, 'memory.events'));
      return {
        memoryBytes: Number(read(path.join(dir, 'memory.current'))),
        memoryLimitBytes: Number(read(path.join(dir, 'memory.max'))),
        cpuQuotaPercent: quota === 'max' ? 100 : Number(quota) / 1000,
        cpus: read(path.join(dir, 'cpuset.cpus')),
        pids: this.pids().length,
        oomKills: Number(/oom_kill (\d+)/.exec(events)?.[1] ?? 0),
      };
    }
    const mem = this.dir('memory');
    const oomControl = read(path.join(mem, 'memory.oom_control'));
    return {
      memoryBytes: Number(read(path.join(mem, 'memory.usage_in_bytes'))),
      memoryLimitBytes: Number(read(path.join(mem, 'memory.limit_in_bytes'))),
      cpuQuotaPercent: Number(read(path.join(this.dir('cpu'), 'cpu.cfs_quota_us'))) / 1000,
      cpus: read(path.join(this.dir('cpuset'), 'cpuset.cpus')),
      pids: this.pids().length,
      oomKills: Number(/oom_kill (\d+)/.exec(oomControl)?.[1] ?? 0),
    };
  }

  /** Removes the cgroup(s); the LC must have no processes left. Idempotent. */
  async remove(): Promise<void> {
    const dirs = this.version === 2 ? [path.join(root, this.name)] : v1Controllers.map((c) => this.dir(c));
    for (const dir of dirs) {
      for (let attempt = 0; ; attempt++) {
        try {
          fs.rmdirSync(dir);
          break;
        } catch (error) {
          if (isErrno(error, 'ENOENT')) break;
          if (isErrno(error, 'EBUSY') && attempt < 100) {
            await sleep(20);
            continue;
          }
          throw error;
        }
      }
    }
  }
}
