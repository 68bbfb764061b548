/**
 * The namespace driver: an LC is a process tree in its own mount, PID, UTS, IPC and network namespaces,
 * with its own root filesystem (a btrfs subvolume), its image's own init as PID 1, veth NICs on the
 * host bridge and cgroup limits. A small detached supervisor per LC (lc-supervise.sh) keeps the LC
 * independent of the manager: the manager can exit or crash and re-attach later by reading the LC's
 * runtime directory.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  UnderstudyError,
  exec,
  formatArgv,
  isErrno,
  isUnderstudyError,
  sleep,
  spawnProcess,
  waitFor,
  type ExecOptions,
  type ExecResult,
} from '../../core/index.ts';
import type {
  ControlReport,
  DriverEnvironment,
  LcSpec,
  LcStatus,
  NicSpec,
  PartitioningDriver,
  ResourceUsage,
  StopResult,
} from '../driver.ts';
import { LcCgroup } from '../cgroups.ts';
import {
  configureNic,
  createNetns,
  createNic,
  deleteNetns,
  deleteNic,
  netnsExists,
  nicNamesIn,
} from './nic.ts';
import { readFileInRoot, writeFileInRoot } from '../rootfs-io.ts';
import { readOutbox, removeReport } from '../control-outbox.ts';
import { diskAt, imageOnPool } from '../lc-disks.ts';
import { waitUntilRunning } from '../wait-up.ts';

const scriptDir = path.dirname(fileURLToPath(import.meta.url));
/** A report is a small JSON document (a patch table); anything bigger is refused unread. */

/** The namespace driver needs exactly what every driver gets from the composition root. */
export type NamespaceDriverOptions = Omit<DriverEnvironment, 'stateDir'>;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if (isErrno(error, 'ESRCH')) return false;
    throw error;
  }
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/** Deletes every btrfs subvolume at or under `dir` (deepest first), then the directory. */
async function deleteSubvolumesUnder(dir: string): Promise<void> {
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
  for (const subvolume of subvolumes.reverse()) {
    await exec(['btrfs', 'subvolume', 'delete', subvolume]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((tid) => (readText(`/proc/${pid}/task/${tid}/children`) ?? '').split(' '))
      .filter(Boolean)
      .map(Number);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
}

export class NamespaceDriver implements PartitioningDriver {
  readonly name = 'namespace';
  constructor(private readonly options: NamespaceDriverOptions) {}

  netnsName(lc: string): string {
    return `us${this.options.tag}-${lc}`;
  }

  private cgroup(lc: string): LcCgroup {
    return new LcCgroup(`understudy-${this.options.tag}-${lc}`);
  }

  runtimeDir(lc: string): string {
    return path.join(this.options.runDir, lc);
  }

  controlDir(lc: string): string {
    return path.join(this.runtimeDir(lc), 'control');
  }

  diskPath(spec: LcSpec, disk: string): string {
    return this.options.diskPath(spec, disk);
  }

  async create(spec: LcSpec): Promise<void> {
    const undo: (() => Promise<unknown>)[] = [];
    try {
      for (const disk of spec.disks) {
        const target = this.diskPath(spec, disk.name);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        if (disk.mountPath === '/') {
          const image = await this.imageIn(spec.image, disk.pool);
          await exec(['btrfs', 'subvolume', 'snapshot', image, target]);
        } else {
          await exec(['btrfs', 'subvolume', 'create', target]);
        }
        undo.push(() => exec(['btrfs', 'subvolume', 'delete', target]));
      }
      const netns = this.netnsName(spec.name);
      await createNetns(netns);
      undo.push(() => deleteNetns(netns));
      for (const nic of spec.nics) {
        await createNic({ tag: this.options.tag, netns, nic });
        undo.push(() => deleteNic(this.options.tag, nic.mac));
      }
      fs.mkdirSync(path.join(this.controlDir(spec.name), 'outbox'), { recursive: true, mode: 0o755 });
      undo.push(async () => fs.rmSync(this.runtimeDir(spec.name), { recursive: true, force: true }));
      this.cgroup(spec.name).apply({
        cpus: spec.cpus,
        cpuSharePercent: spec.cpuSharePercent,
        memoryMb: spec.memoryMb,
        pidsMax: 4096,
      });
      undo.push(() => this.cgroup(spec.name).remove());
    } catch (error) {
      for (const step of undo.reverse()) await step().catch(() => undefined);
      throw error;
    }
  }

  /**
   * The image's subvolume on the given pool: the image itself when it lives there, else a read-only
   * copy received once (btrfs send | receive) and kept, named after the image's UUID so a rebuilt image
   * is copied again.
   */
  private async imageIn(image: string, pool: string): Promise<string> {
    return imageOnPool({
      image,
      imagePath: this.options.imagePath(image),
      pool,
      poolPath: this.options.poolPath(pool),
    });
  }

  async destroy(spec: LcSpec): Promise<void> {
    const status = await this.status(spec.name);
    if (status.state !== 'stopped' && status.state !== 'crashed') {
      throw new UnderstudyError('LC_RUNNING', `The logical computer "${spec.name}" is ${status.state}`, {
        hint: 'Stop it first (`understudy lc stop`).',
      });
    }
    // Every part is removed even when another part fails, so a failure leaves as little as possible.
    const failures: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    };
    await attempt(() => this.killLeftovers(spec.name));
    for (const nic of spec.nics) await attempt(() => deleteNic(this.options.tag, nic.mac));
    await attempt(() => deleteNetns(this.netnsName(spec.name)));
    for (const dir of new Set(spec.disks.map((d) => path.dirname(this.diskPath(spec, d.name))))) {
      // The LC's disks, and whatever a crashed copy left beside them (set-aside disks, staging snapshots).
      await attempt(() => deleteSubvolumesUnder(dir));
    }
    await attempt(() => this.cgroup(spec.name).remove());
    fs.rmSync(this.runtimeDir(spec.name), { recursive: true, force: true });
    if (failures.length > 0) throw failures[0];
  }

  /** Restores what a host reboot loses (namespace, NICs, cgroups) for an LC about to start. */
  private async ensureDevices(spec: LcSpec): Promise<void> {
    const netns = this.netnsName(spec.name);
    if (!netnsExists(netns)) await createNetns(netns);
    const present = await nicNamesIn(netns);
    for (const nic of spec.nics)
      if (!present.includes(nic.name)) await createNic({ tag: this.options.tag, netns, nic });
    this.cgroup(spec.name).apply({
      cpus: spec.cpus,
      cpuSharePercent: spec.cpuSharePercent,
      memoryMb: spec.memoryMb,
      pidsMax: 4096,
    });
    fs.mkdirSync(path.join(this.controlDir(spec.name), 'outbox'), { recursive: true, mode: 0o755 });
  }

  async start(spec: LcSpec): Promise<void> {
    const status = await this.status(spec.name);
    if (status.state !== 'stopped' && status.state !== 'crashed') {
      throw new UnderstudyError(
        'LC_RUNNING',
        `The logical computer "${spec.name}" is already ${status.state}`,
        {
          hint: 'Use `understudy lc reboot` to restart it.',
        },
      );
    }
    await this.killLeftovers(spec.name);
    await this.ensureDevices(spec);
    const rundir = this.runtimeDir(spec.name);
    for (const f of ['stop-requested', 'no-reboot', 'boot.pid', 'supervisor.pid', 'state'])
      fs.rmSync(path.join(rundir, f), { force: true });
    const mounts = spec.disks
      .filter((d) => d.mountPath !== '/')
      .flatMap((d) => [this.diskPath(spec, d.name), d.mountPath]);
    const root = this.diskPath(spec, spec.disks.find((d) => d.mountPath === '/')?.name ?? 'system');
    fs.appendFileSync(
      path.join(rundir, 'console.log'),
      `[understudy] starting ${spec.name} at ${new Date().toISOString()}\n`,
    );
    const supervisor = spawnProcess(
      [
        path.join(scriptDir, 'lc-supervise.sh'),
        rundir,
        this.netnsName(spec.name),
        this.cgroup(spec.name).procsFiles().join(':'),
        '--',
        root,
        spec.name,
        this.controlDir(spec.name),
        ...mounts,
      ],
      { detached: true, stdio: 'ignore' },
    );
    supervisor.child.unref();
    const initPid = await waitFor(() => this.initPid(spec.name), { timeoutMs: 10_000, intervalMs: 10 });
    if (initPid === undefined) {
      throw new UnderstudyError(
        'LC_BOOT_FAILED',
        `The logical computer "${spec.name}" did not start:\n${this.consoleTail(spec.name)}`,
        {
          hint: `Read ${path.join(rundir, 'console.log')}.`,
        },
      );
    }
  }

  private supervisorPid(lc: string): number | undefined {
    const pid = Number(readText(path.join(this.runtimeDir(lc), 'supervisor.pid')));
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
    // Guard against pid reuse: the process must be this LC's supervisor.
    const cmdline = readText(`/proc/${pid}/cmdline`) ?? '';
    return cmdline.includes('lc-supervise.sh') && cmdline.includes(this.runtimeDir(lc)) ? pid : undefined;
  }

  /** Host pid of the LC's init (PID 1 inside), found as the child of the supervisor's `unshare`. */
  private initPid(lc: string): number | undefined {
    if (this.supervisorPid(lc) === undefined) return undefined;
    const bootPid = Number(readText(path.join(this.runtimeDir(lc), 'boot.pid')));
    if (!Number.isInteger(bootPid) || bootPid <= 0) return undefined;
    const [init] = childrenOf(bootPid);
    return init;
  }

  consoleTail(lc: string, lines = 20): string {
    const text = readText(path.join(this.runtimeDir(lc), 'console.log')) ?? '';
    return text.split('\n').slice(-lines).join('\n');
  }

  async status(lc: string): Promise<LcStatus> {
    const rundir = this.runtimeDir(lc);
    const consoleLog = path.join(rundir, 'console.log');
    const reboots = Number(readText(path.join(rundir, 'reboots')) ?? 0);
    const bootedAt = readText(path.join(rundir, 'booted-at'));
    const supervisor = this.supervisorPid(lc);
    if (supervisor === undefined) {
      const recorded = readText(path.join(rundir, 'state'));
      const leftovers = this.cgroup(lc).exists() ? this.cgroup(lc).pids().length : 0;
      // A supervisor that vanished without writing "stopped" means it was killed: the LC crashed.
      const state = recorded === undefined || recorded === 'stopped' ? 'stopped' : 'crashed';
      return { name: lc, state: leftovers > 0 ? 'crashed' : state, reboots, bootedAt, consoleLog };
    }
    const recorded = readText(path.join(rundir, 'state'));
    const initPid = this.initPid(lc);
    if (fs.existsSync(path.join(rundir, 'stop-requested')))
      return { name: lc, state: 'stopping', initPid, reboots, bootedAt, consoleLog };
    if (recorded === 'rebooting' || initPid === undefined)
      return { name: lc, state: 'rebooting', initPid, reboots, bootedAt, consoleLog };
    const booted = fs.existsSync(path.join(this.controlDir(lc), 'booted'));
    return { name: lc, state: booted ? 'running' : 'booting', initPid, reboots, bootedAt, consoleLog };
  }

  async waitUntilUp(lc: string, options: { timeoutMs?: number } = {}): Promise<void> {
    await waitUntilRunning({
      lc,
      status: () => this.status(lc),
      timeoutMs: options.timeoutMs ?? 30_000,
      consoleTail: () => this.consoleTail(lc),
      consoleLogPath: path.join(this.runtimeDir(lc), 'console.log'),
    });
  }

  private async requireInit(lc: string): Promise<number> {
    const pid = this.initPid(lc);
    if (pid === undefined) {
      throw new UnderstudyError('LC_NOT_RUNNING', `The logical computer "${lc}" is not running`, {
        hint: `Start it first: understudy lc start ${lc}`,
      });
    }
    return pid;
  }

  async stop(lc: string, options: { timeoutMs?: number } = {}): Promise<StopResult> {
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? 15_000;
    const supervisor = this.supervisorPid(lc);
    if (supervisor === undefined) {
      await this.killLeftovers(lc);
      return { outcome: 'was-stopped', durationMs: 0 };
    }
    fs.writeFileSync(path.join(this.runtimeDir(lc), 'stop-requested'), new Date().toISOString());
    const init = this.initPid(lc);
    // Busybox init powers off on SIGUSR2: it runs the shutdown scripts, then ends every process.
    if (init !== undefined) process.kill(init, 'SIGUSR2');
    const clean = await waitFor(() => (this.supervisorPid(lc) === undefined ? true : undefined), {
      timeoutMs,
      intervalMs: 20,
    });
    if (clean) return { outcome: 'clean', durationMs: performance.now() - started };
    const stillInit = this.initPid(lc);
    if (stillInit !== undefined) process.kill(stillInit, 'SIGKILL'); // ends the whole PID namespace
    await waitFor(() => (this.supervisorPid(lc) === undefined ? true : undefined), {
      timeoutMs: 5000,
      intervalMs: 20,
    });
    await this.killLeftovers(lc);
    return { outcome: 'killed', durationMs: performance.now() - started };
  }

  /** Kills processes left in the LC's cgroup (e.g. an exec whose init died). Only the LC's own processes. */
  private async killLeftovers(lc: string): Promise<void> {
    const cg = this.cgroup(lc);
    if (!cg.exists()) return;
    if (cg.isFrozen()) await cg.thaw();
    for (let i = 0; i < 50 && cg.pids().length > 0; i++) {
      for (const pid of cg.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch (error) {
          if (!isErrno(error, 'ESRCH')) throw error;
        }
      }
      await sleep(20);
    }
  }

  async reboot(lc: string): Promise<void> {
    const init = await this.requireInit(lc);
    const before = Number(readText(path.join(this.runtimeDir(lc), 'reboots')) ?? 0);
    process.kill(init, 'SIGTERM'); // busybox init: reboot
    const rebooted = await waitFor(
      () =>
        Number(readText(path.join(this.runtimeDir(lc), 'reboots')) ?? 0) > before &&
        this.initPid(lc) !== undefined
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    if (!rebooted)
      throw new UnderstudyError(
        'LC_BOOT_FAILED',
        `The logical computer "${lc}" did not come back after the reboot:\n${this.consoleTail(lc)}`,
      );
  }

  async exec(lc: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const init = await this.requireInit(lc);
    const wrapper = [
      path.join(scriptDir, 'lc-exec.sh'),
      this.cgroup(lc).procsFiles().join(':'),
      String(init),
    ];
    try {
      return await exec([...wrapper, ...argv], options);
    } catch (error) {
      // Name the command as the operator wrote it, inside the LC, not the wrapper that enters it.
      if (isUnderstudyError(error) && (error.code === 'EXEC_FAILED' || error.code === 'EXEC_TIMEOUT')) {
        const message = error.message.replace(formatArgv(wrapper), `[in ${lc}]`);
        const oom =
          (error.details.signal === 'SIGKILL' && (await this.usage(lc).catch(() => undefined))?.oomKills) ||
          0;
        throw new UnderstudyError(
          error.code,
          oom > 0 ? `${message} (the LC's memory limit was hit: ${oom} OOM kill(s) so far)` : message,
          {
            cause: error,
            details: { ...error.details, argv, lc },
          },
        );
      }
      throw error;
    }
  }

  async netExec(lc: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return exec(['ip', 'netns', 'exec', this.netnsName(lc), ...argv], options);
  }

  /** The disk mounted at `lcPath` and the path on it (see diskAt). */
  private diskOf(spec: LcSpec, lcPath: string): { root: string; rest: string } {
    const { disk, rest } = diskAt(spec, lcPath);
    return { root: this.diskPath(spec, disk), rest };
  }

  async writeFile(spec: LcSpec, lcPath: string, data: string | Buffer, mode = 0o644): Promise<void> {
    const { root, rest } = this.diskOf(spec, lcPath);
    writeFileInRoot(root, rest, data, { mode });
  }

  async readFile(spec: LcSpec, lcPath: string): Promise<Buffer> {
    const { root, rest } = this.diskOf(spec, lcPath);
    return readFileInRoot(root, rest);
  }

  async moveNic(from: LcSpec, nicName: string, to: LcSpec): Promise<string> {
    const nic = from.nics.find((n) => n.name === nicName);
    if (!nic)
      throw new UnderstudyError(
        'NIC_NOT_FOUND',
        `The logical computer "${from.name}" has no NIC named "${nicName}"`,
      );
    const fromNs = this.netnsName(from.name);
    const toNs = this.netnsName(to.name);
    const taken = await nicNamesIn(toNs);
    // An ethN NIC takes the lowest free ethN in its new LC (a sole NIC is eth0 again); others keep their name.
    let newName = nic.name;
    if (/^eth\d+$/.test(nic.name)) for (let i = 0; ; i++) if (!taken.includes((newName = `eth${i}`))) break;
    // Names may clash on either side, so the NIC travels under a temporary name.
    const travel = `mv${crypto.randomBytes(4).toString('hex')}`;
    await exec(['ip', '-n', fromNs, 'link', 'set', nic.name, 'down']);
    await exec(['ip', '-n', fromNs, 'link', 'set', nic.name, 'name', travel]);
    await exec(['ip', '-n', fromNs, 'link', 'set', travel, 'netns', toNs]);
    await exec(['ip', '-n', toNs, 'link', 'set', travel, 'name', newName]);
    // Moving a device to another namespace drops its addresses: set them again.
    const moved: NicSpec = { ...nic, name: newName };
    await configureNic(toNs, moved);
    return newName;
  }

  async addNic(spec: LcSpec, nic: NicSpec): Promise<void> {
    await createNic({ tag: this.options.tag, netns: this.netnsName(spec.name), nic });
  }

  async removeNic(spec: LcSpec, nicName: string): Promise<void> {
    const nic = spec.nics.find((n) => n.name === nicName);
    if (!nic)
      throw new UnderstudyError(
        'NIC_NOT_FOUND',
        `The logical computer "${spec.name}" has no NIC named "${nicName}"`,
      );
    await deleteNic(this.options.tag, nic.mac);
  }

  async freeze(lc: string): Promise<void> {
    await this.cgroup(lc).freeze();
  }

  async thaw(lc: string): Promise<void> {
    await this.cgroup(lc).thaw();
  }

  async setWriteLimit(lc: string, devicePath: string, bytesPerSecond: number | null): Promise<void> {
    const rdev = fs.statSync(devicePath).rdev;
    const majMin = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;
    this.cgroup(lc).setWriteLimit(majMin, bytesPerSecond);
  }

  async usage(lc: string): Promise<ResourceUsage & { oomKills: number }> {
    return this.cgroup(lc).usage();
  }

  /** Reads the LC's outbox (see control-outbox.ts for what a planted file cannot do). */
  async readReports(lc: string): Promise<ControlReport[]> {
    return readOutbox(lc, this.controlDir(lc));
  }

  async acknowledgeReport(lc: string, id: string): Promise<void> {
    removeReport(this.controlDir(lc), id);
  }
}
