/**
 * The LXC driver: an LC is an unprivileged LXC system container (see config.ts for what that means)
 * run by Debian's `lxc-*` tools, with systemd or the image's own init as PID 1. Containers live under
 * the driver's own LXC path (`lxc-* -P`), one directory per LC holding its generated config, its logs,
 * its NIC list and its control channel; nothing goes to /var/lib/lxc. LXC's monitor process keeps each
 * LC running independently of the manager, which can exit and come back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  UnderstudyError,
  exec,
  formatArgv,
  isErrno,
  isUnderstudyError,
  spawnProcess,
  waitFor,
  type ExecOptions,
  type ExecResult,
} from '../../core/index.ts';
import type {
  ControlReport,
  LcRuntimeState,
  LcSpec,
  LcStatus,
  NicSpec,
  PartitioningDriver,
  ResourceUsage,
  StopResult,
} from '../driver.ts';
import { LcCgroup } from '../cgroups.ts';
import { readFileInRoot, writeFileInRoot } from '../rootfs-io.ts';
import { lxcConfig, type CgroupVersion, type InitKind, type LxcIdmap } from './config.ts';
import { deleteSubvolumesUnder, makeTraversable } from './disks.ts';
import { diskAt, imageOnPool } from '../lc-disks.ts';
import { waitUntilRunning } from '../wait-up.ts';
import { leaseIdmap, releaseIdmap } from './idmap.ts';
import { readOutbox, removeReport } from '../control-outbox.ts';

const scriptDir = path.dirname(fileURLToPath(import.meta.url));
const insidePath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface LxcDriverOptions {
  /** Host tag that makes container, cgroup and device names unique to this understudy host. */
  tag: string;
  /** LXC's container directory for this host (given to every lxc-* tool as -P). */
  lxcPath: string;
  /** Mount point of a storage pool. */
  poolPath: (pool: string) => string;
  /** Path of an image's read-only subvolume. */
  imagePath: (image: string) => string;
  /** Host directory of an LC's disk, when the disk store decides it (default: <pool>/lcs/<lc>/<disk>). */
  diskPath?: (spec: LcSpec, disk: string) => string;
  /** Machine-wide directory of idmap leases (default /var/lib/understudy-idmap). */
  idmapLeaseDir?: string;
  subuidFile?: string;
  subgidFile?: string;
  /** Processes allowed in one LC (default 4096). */
  pidsMax?: number;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
}

export function hostCgroupVersion(): CgroupVersion {
  return fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
}

/** Which init the root tree boots: /sbin/init resolved inside the tree. */
export function initKindOf(root: string): InitKind {
  // Links are read one at a time and never followed on the host: the tree belongs to the LC.
  let target = '/sbin/init';
  for (let hops = 0; hops < 8; hops++) {
    let link: string;
    try {
      link = fs.readlinkSync(path.join(root, target));
    } catch (error) {
      if (isErrno(error, 'EINVAL') || isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) break;
      throw error;
    }
    target = path.posix.resolve(path.posix.dirname(target), link);
  }
  if (/systemd/.test(target)) return 'systemd';
  if (/busybox/.test(target)) return 'busybox';
  return 'sysvinit';
}

/** Host-side name of a NIC's veth end, from the host tag and the MAC: stable when the NIC moves between LCs. */
export function hostIfName(tag: string, mac: string): string {
  return `u${tag}${mac.replaceAll(':', '').slice(-6)}`;
}

/** One line of an LC's NIC list (read by the start-host hook). */
function nicLine(tag: string, nic: NicSpec): string {
  for (const value of [nic.name, nic.mac, nic.bridge, ...nic.addresses])
    if (!/^[A-Za-z0-9._:/-]+$/.test(value))
      throw new UnderstudyError('INVALID_ARGUMENT', `NIC value "${value}" has characters a NIC cannot have`);
  const addresses = nic.addresses.length > 0 ? nic.addresses.join(',') : '-';
  return `${nic.name} ${nic.mac} ${nic.bridge} ${hostIfName(tag, nic.mac)} ${addresses}`;
}

export class LxcDriver implements PartitioningDriver {
  readonly name = 'lxc';
  private readonly leaseDir: string;
  constructor(private readonly options: LxcDriverOptions) {
    this.leaseDir = options.idmapLeaseDir ?? '/var/lib/understudy-idmap';
  }

  /** The LXC container name: unique on the host, since LXC names the LC's cgroups after it. */
  containerName(lc: string): string {
    return `us${this.options.tag}-${lc}`;
  }

  /** Host-side name of the veth of the NIC with this MAC. */
  hostNicName(mac: string): string {
    return hostIfName(this.options.tag, mac);
  }

  lcDir(lc: string): string {
    return path.join(this.options.lxcPath, this.containerName(lc));
  }

  controlDir(lc: string): string {
    return path.join(this.lcDir(lc), 'control');
  }

  private lxc(tool: string, lc: string): string[] {
    return [tool, '-P', this.options.lxcPath, '-n', this.containerName(lc)];
  }

  diskPath(spec: LcSpec, disk: string): string {
    if (this.options.diskPath) return this.options.diskPath(spec, disk);
    const d = spec.disks.find((x) => x.name === disk);
    if (!d)
      throw new UnderstudyError(
        'DISK_NOT_FOUND',
        `The logical computer "${spec.name}" has no disk named "${disk}"`,
      );
    return path.join(this.options.poolPath(d.pool), 'lcs', spec.name, d.name);
  }

  private systemDisk(spec: LcSpec): string {
    return this.diskPath(spec, spec.disks.find((d) => d.mountPath === '/')?.name ?? 'system');
  }

  private idmap(lc: string): LxcIdmap {
    const text = readText(path.join(this.lcDir(lc), 'idmap.json'));
    if (text === undefined)
      throw new UnderstudyError('LC_NOT_FOUND', `The logical computer "${lc}" has no LXC container`, {
        hint: `Create it first: understudy lc create ${lc} --driver lxc`,
      });
    return JSON.parse(text) as LxcIdmap;
  }

  private idmapOptions() {
    return {
      leaseDir: this.leaseDir,
      subuidFile: this.options.subuidFile ?? '/etc/subuid',
      subgidFile: this.options.subgidFile ?? '/etc/subgid',
    };
  }

  async create(spec: LcSpec): Promise<void> {
    const dir = this.lcDir(spec.name);
    if (fs.existsSync(dir))
      throw new UnderstudyError('LC_EXISTS', `An LXC container for "${spec.name}" already exists at ${dir}`);
    const undo: (() => Promise<unknown>)[] = [];
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
      undo.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
      const idmap = leaseIdmap(this.idmapOptions(), dir);
      undo.push(async () => releaseIdmap({ leaseDir: this.leaseDir }, dir));
      fs.writeFileSync(path.join(dir, 'idmap.json'), JSON.stringify(idmap));
      for (const disk of spec.disks) {
        const target = this.diskPath(spec, disk.name);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        if (disk.mountPath === '/') {
          const image = await imageOnPool({
            image: spec.image,
            imagePath: this.options.imagePath(spec.image),
            pool: disk.pool,
            poolPath: this.options.poolPath(disk.pool),
          });
          await exec(['btrfs', 'subvolume', 'snapshot', image, target]);
        } else {
          await exec(['btrfs', 'subvolume', 'create', target]);
        }
        undo.push(() => exec(['btrfs', 'subvolume', 'delete', target]));
        makeTraversable(target);
      }
      // The control channel belongs to the LC's root, so that it can write its reports there.
      const control = this.controlDir(spec.name);
      fs.mkdirSync(path.join(control, 'outbox'), { recursive: true, mode: 0o755 });
      fs.chownSync(control, idmap.uidBase, idmap.gidBase);
      fs.chownSync(path.join(control, 'outbox'), idmap.uidBase, idmap.gidBase);
      makeTraversable(control);
      this.writeConfig(spec);
    } catch (error) {
      for (const step of undo.reverse()) await step().catch(() => undefined);
      throw error;
    }
  }

  /** Writes the LXC config and the NIC list from the spec. */
  private writeConfig(spec: LcSpec): void {
    const dir = this.lcDir(spec.name);
    const root = this.systemDisk(spec);
    for (const p of [dir, root, ...spec.disks.map((d) => this.diskPath(spec, d.name))])
      if (/\s/.test(p))
        throw new UnderstudyError('INVALID_ARGUMENT', `LXC cannot use a path with spaces: "${p}"`);
    const config = lxcConfig({
      containerName: this.containerName(spec.name),
      hostname: spec.name,
      rootfs: root,
      idmap: this.idmap(spec.name),
      mounts: spec.disks
        .filter((d) => d.mountPath !== '/')
        .map((d) => ({ source: this.diskPath(spec, d.name), target: d.mountPath })),
      controlDir: this.controlDir(spec.name),
      limits: {
        cpus: spec.cpus,
        cpuSharePercent: spec.cpuSharePercent,
        memoryMb: spec.memoryMb,
        pidsMax: this.options.pidsMax ?? 4096,
        writeBps: [],
      },
      cgroupVersion: hostCgroupVersion(),
      memsw: fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'),
      init: initKindOf(root),
      startHostHook: [path.join(scriptDir, 'lxc-start-host.sh'), dir],
      consoleLog: path.join(dir, 'console.log'),
      lxcLog: path.join(dir, 'lxc.log'),
    });
    fs.writeFileSync(path.join(dir, 'config'), config);
    this.writeNics(spec.name, spec.nics);
  }

  private writeNics(lc: string, nics: readonly NicSpec[]): void {
    const file = path.join(this.lcDir(lc), 'nics');
    fs.writeFileSync(`${file}.tmp`, nics.map((n) => `${nicLine(this.options.tag, n)}\n`).join(''));
    fs.renameSync(`${file}.tmp`, file);
  }

  private readNics(lc: string): string[] {
    return (readText(path.join(this.lcDir(lc), 'nics')) ?? '').split('\n').filter(Boolean);
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
    for (const nic of spec.nics) await attempt(() => this.deleteHostNic(nic.mac));
    for (const pool of new Set(spec.disks.map((d) => d.pool)))
      await attempt(() => deleteSubvolumesUnder(path.join(this.options.poolPath(pool), 'lcs', spec.name)));
    const dir = this.lcDir(spec.name);
    await attempt(async () => releaseIdmap({ leaseDir: this.leaseDir }, dir));
    await attempt(async () => fs.rmSync(dir, { recursive: true, force: true }));
    if (failures.length > 0) throw failures[0];
  }

  private async deleteHostNic(mac: string): Promise<void> {
    const host = hostIfName(this.options.tag, mac);
    if (fs.existsSync(`/sys/class/net/${host}`)) await exec(['ip', 'link', 'del', host], { okCodes: [0, 1] });
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
    this.writeConfig(spec);
    const dir = this.lcDir(spec.name);
    fs.rmSync(path.join(this.controlDir(spec.name), 'booted'), { force: true });
    fs.rmSync(path.join(dir, 'stop-requested'), { force: true });
    fs.rmSync(path.join(dir, 'crashed'), { force: true });
    fs.rmSync(path.join(dir, 'boots'), { force: true }); // one line per boot since this start
    fs.appendFileSync(
      path.join(dir, 'console.log'),
      `[understudy] starting ${spec.name} at ${new Date().toISOString()}\n`,
    );
    fs.rmSync(path.join(dir, 'supervisor.pid'), { force: true });
    const supervisor = spawnProcess(
      [path.join(scriptDir, 'lxc-supervise.sh'), this.options.lxcPath, this.containerName(spec.name), dir],
      { detached: true, stdio: 'ignore' },
    );
    supervisor.child.unref();
    const running = await waitFor(
      async () => {
        const { state } = await this.lxcState(spec.name);
        if (state === 'RUNNING') return true;
        return state === 'STOPPED' && supervisor.child.exitCode !== null ? false : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    if (running !== true) {
      throw new UnderstudyError(
        'LC_BOOT_FAILED',
        `The logical computer "${spec.name}" did not start:\n${this.lxcLogTail(spec.name)}\n${readText(path.join(dir, 'supervisor.log')) ?? ''}`.trim(),
        { hint: `Read ${path.join(dir, 'lxc.log')} and ${path.join(dir, 'console.log')}.` },
      );
    }
  }

  /** Pid of the LC's supervisor (lxc-supervise.sh), when it runs. */
  private supervisorPid(lc: string): number | undefined {
    const dir = this.lcDir(lc);
    const pid = Number(readText(path.join(dir, 'supervisor.pid'))?.trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    // Guard against pid reuse: the process must be this LC's supervisor.
    const cmdline = readText(`/proc/${pid}/cmdline`) ?? '';
    return cmdline.includes('lxc-supervise.sh') && cmdline.includes(dir) ? pid : undefined;
  }

  private lxcLogTail(lc: string, lines = 10): string {
    return (readText(path.join(this.lcDir(lc), 'lxc.log')) ?? '').trim().split('\n').slice(-lines).join('\n');
  }

  consoleTail(lc: string, lines = 20): string {
    const text = readText(path.join(this.lcDir(lc), 'console.log')) ?? '';
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** LXC's view of the container: its state name and its init's host pid. */
  private async lxcState(lc: string): Promise<{ state: string; pid?: number }> {
    if (!fs.existsSync(path.join(this.lcDir(lc), 'config'))) return { state: 'STOPPED' };
    const out = await exec([...this.lxc('lxc-info', lc), '-s', '-p'], { okCodes: [0, 1] });
    const state = /^State:\s+(\S+)/m.exec(out.stdout)?.[1] ?? 'STOPPED';
    const pid = /^PID:\s+(\d+)/m.exec(out.stdout)?.[1];
    return { state, pid: pid === undefined ? undefined : Number(pid) };
  }

  private boots(lc: string): string[] {
    return (readText(path.join(this.lcDir(lc), 'boots')) ?? '').split('\n').filter(Boolean);
  }

  async status(lc: string): Promise<LcStatus> {
    const dir = this.lcDir(lc);
    const consoleLog = path.join(dir, 'console.log');
    const boots = this.boots(lc);
    const reboots = Math.max(0, boots.length - 1);
    const bootedAt = boots.at(-1);
    const { state, pid } = await this.lxcState(lc);
    const base = { name: lc, initPid: pid, reboots, bootedAt, consoleLog };
    const booted = fs.existsSync(path.join(this.controlDir(lc), 'booted'));
    const supervised = this.supervisorPid(lc) !== undefined;
    const stopRequested = fs.existsSync(path.join(dir, 'stop-requested'));
    const byLxc: Record<string, LcRuntimeState> = {
      // Between two lxc-starts of a reboot the container is stopped but its supervisor runs.
      STOPPED: supervised
        ? stopRequested
          ? 'stopping'
          : 'rebooting'
        : fs.existsSync(path.join(dir, 'crashed'))
          ? 'crashed'
          : 'stopped',
      STARTING: 'booting',
      RUNNING: booted ? 'running' : 'booting',
      FROZEN: booted ? 'running' : 'booting',
      THAWED: booted ? 'running' : 'booting',
      STOPPING: stopRequested ? 'stopping' : 'rebooting',
      ABORTING: stopRequested ? 'stopping' : 'rebooting',
    };
    return { ...base, state: byLxc[state] ?? 'crashed' };
  }

  async waitUntilUp(lc: string, options: { timeoutMs?: number } = {}): Promise<void> {
    await waitUntilRunning({
      lc,
      status: () => this.status(lc),
      timeoutMs: options.timeoutMs ?? 60_000,
      consoleTail: () => this.consoleTail(lc),
      consoleLogPath: path.join(this.lcDir(lc), 'console.log'),
    });
  }

  private async requireInit(lc: string): Promise<number> {
    const { pid } = await this.lxcState(lc);
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
    const { state } = await this.lxcState(lc);
    if (state === 'STOPPED' && this.supervisorPid(lc) === undefined)
      return { outcome: 'was-stopped', durationMs: 0 };
    fs.writeFileSync(path.join(this.lcDir(lc), 'stop-requested'), new Date().toISOString());
    const supervisorGone = async (): Promise<void> => {
      await waitFor(() => (this.supervisorPid(lc) === undefined ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
    };
    if (state === 'FROZEN' || state === 'FREEZING') await this.thaw(lc);
    // The init's halt signal (lxc.signal.halt); --nokill: fail instead of killing when it takes too long.
    const clean = await exec(
      [...this.lxc('lxc-stop', lc), '--nokill', '-t', String(Math.max(1, Math.ceil(timeoutMs / 1000)))],
      { okCodes: [0, 1], timeoutMs: timeoutMs + 10_000 },
    );
    if (clean.exitCode === 0 && (await this.lxcState(lc)).state === 'STOPPED') {
      await supervisorGone();
      return { outcome: 'clean', durationMs: performance.now() - started };
    }
    await exec([...this.lxc('lxc-stop', lc), '-k'], { okCodes: [0, 1, 2] });
    await supervisorGone();
    return { outcome: 'killed', durationMs: performance.now() - started };
  }

  async reboot(lc: string): Promise<void> {
    await this.requireInit(lc);
    const before = this.boots(lc).length;
    // The init's reboot signal (lxc.signal.reboot): the LC shuts down in order and LXC starts it again.
    await exec([...this.lxc('lxc-stop', lc), '-r', '-t', '30'], { timeoutMs: 40_000, okCodes: [0, 1] });
    const rebooted = await waitFor(
      async () => (this.boots(lc).length > before && (await this.lxcState(lc)).pid ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    if (!rebooted)
      throw new UnderstudyError(
        'LC_BOOT_FAILED',
        `The logical computer "${lc}" did not come back after the reboot:\n${this.consoleTail(lc)}`,
      );
  }

  async exec(lc: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    await this.requireInit(lc);
    const wrapper = [...this.lxc('lxc-attach', lc), '--clear-env', '-v', `PATH=${insidePath}`, '--'];
    try {
      return await exec([...wrapper, ...argv], options);
    } catch (error) {
      // Name the command as the operator wrote it, inside the LC, not the tool that enters it.
      if (isUnderstudyError(error) && (error.code === 'EXEC_FAILED' || error.code === 'EXEC_TIMEOUT')) {
        throw new UnderstudyError(error.code, error.message.replace(formatArgv(wrapper), `[in ${lc}]`), {
          cause: error,
          details: { ...error.details, argv, lc },
        });
      }
      throw error;
    }
  }

  /** Runs a host program in the LC's network namespace only (its mounts and users stay the host's). */
  async netExec(lc: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const pid = await this.requireInit(lc);
    return exec(['nsenter', '-t', String(pid), '-n', '--', ...argv], options);
  }

  /** The disk mounted at `lcPath` and the path on it (see diskAt). */
  private diskOf(spec: LcSpec, lcPath: string): { root: string; rest: string } {
    const { disk, rest } = diskAt(spec, lcPath);
    return { root: this.diskPath(spec, disk), rest };
  }

  /**
   * Writes into the LC's disk from the host, running or not; the path resolves inside the disk (rootfs-io),
   * and the file is owned by the LC's root (uid 0 on the idmapped disk).
   */
  async writeFile(spec: LcSpec, lcPath: string, data: string | Buffer, mode = 0o644): Promise<void> {
    const { root, rest } = this.diskOf(spec, lcPath);
    writeFileInRoot(root, rest, data, { mode });
  }

  async readFile(spec: LcSpec, lcPath: string): Promise<Buffer> {
    const { root, rest } = this.diskOf(spec, lcPath);
    return readFileInRoot(root, rest);
  }

  private async pidIfRunning(lc: string): Promise<number | undefined> {
    return (await this.lxcState(lc)).pid;
  }

  private async plugNic(pid: number, nic: NicSpec): Promise<void> {
    const [name, mac, bridge, host, addresses] = nicLine(this.options.tag, nic).split(' ') as [
      string,
      string,
      string,
      string,
      string,
    ];
    await exec([path.join(scriptDir, 'lxc-nic.sh'), String(pid), name, mac, bridge, host, addresses]);
  }

  async moveNic(from: LcSpec, nicName: string, to: LcSpec): Promise<string> {
    const nic = from.nics.find((n) => n.name === nicName);
    if (!nic)
      throw new UnderstudyError(
        'NIC_NOT_FOUND',
        `The logical computer "${from.name}" has no NIC named "${nicName}"`,
      );
    const fromPid = await this.pidIfRunning(from.name);
    const toPid = await this.pidIfRunning(to.name);
    const taken = this.readNics(to.name).map((l) => l.split(' ')[0]);
    if (toPid !== undefined) taken.push(...(await this.linkNames(toPid)));
    // An ethN NIC takes the lowest free ethN in its new LC (a sole NIC is eth0 again); others keep their name.
    let newName = nic.name;
    if (/^eth\d+$/.test(nic.name)) for (let i = 0; ; i++) if (!taken.includes((newName = `eth${i}`))) break;
    const moved: NicSpec = { ...nic, name: newName };
    const host = hostIfName(this.options.tag, nic.mac);
    if (fromPid !== undefined && toPid !== undefined) {
      // Names may clash on either side, so the NIC travels under a temporary name.
      const travel = `mv${Math.random().toString(16).slice(2, 10)}`;
      const inFrom = ['nsenter', '-t', String(fromPid), '-n', '--'];
      const inTo = ['nsenter', '-t', String(toPid), '-n', '--'];
      await exec([...inFrom, 'ip', 'link', 'set', nic.name, 'down']);
      await exec([...inFrom, 'ip', 'link', 'set', nic.name, 'name', travel]);
      await exec([...inFrom, 'ip', 'link', 'set', travel, 'netns', `/proc/${toPid}/ns/net`]);
      await exec([...inTo, 'ip', 'link', 'set', travel, 'name', newName]);
      // Moving a device to another namespace drops its addresses: set them again.
      await exec([...inTo, 'ip', 'addr', 'flush', 'dev', newName]);
      for (const address of moved.addresses)
        await exec([...inTo, 'ip', 'addr', 'add', address, 'dev', newName]);
      await exec([...inTo, 'ip', 'link', 'set', newName, 'up']);
    } else {
      if (fromPid !== undefined) await exec(['ip', 'link', 'del', host], { okCodes: [0, 1] });
      if (toPid !== undefined) await this.plugNic(toPid, moved);
    }
    const fromNics = this.readNics(from.name).filter((l) => l.split(' ')[1] !== nic.mac);
    fs.writeFileSync(path.join(this.lcDir(from.name), 'nics'), fromNics.map((l) => `${l}\n`).join(''));
    const toNics = [
      ...this.readNics(to.name).filter((l) => l.split(' ')[1] !== nic.mac),
      nicLine(this.options.tag, moved),
    ];
    fs.writeFileSync(path.join(this.lcDir(to.name), 'nics'), toNics.map((l) => `${l}\n`).join(''));
    return newName;
  }

  private async linkNames(pid: number): Promise<string[]> {
    const out = await exec(['nsenter', '-t', String(pid), '-n', '--', 'ip', '-o', 'link', 'show']);
    return out.stdout
      .split('\n')
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
      .filter((n): n is string => n !== undefined);
  }

  async addNic(spec: LcSpec, nic: NicSpec): Promise<void> {
    const line = nicLine(this.options.tag, nic);
    const pid = await this.pidIfRunning(spec.name);
    if (pid !== undefined) await this.plugNic(pid, nic);
    const rest = this.readNics(spec.name).filter((l) => l.split(' ')[1] !== nic.mac);
    fs.writeFileSync(path.join(this.lcDir(spec.name), 'nics'), [...rest, line].map((l) => `${l}\n`).join(''));
  }

  async removeNic(spec: LcSpec, nicName: string): Promise<void> {
    const nic = spec.nics.find((n) => n.name === nicName);
    if (!nic)
      throw new UnderstudyError(
        'NIC_NOT_FOUND',
        `The logical computer "${spec.name}" has no NIC named "${nicName}"`,
      );
    await this.deleteHostNic(nic.mac);
    const rest = this.readNics(spec.name).filter((l) => l.split(' ')[1] !== nic.mac);
    fs.writeFileSync(path.join(this.lcDir(spec.name), 'nics'), rest.map((l) => `${l}\n`).join(''));
  }

  /** The LC's cgroup, as LXC names it (lxc.payload.<container>). */
  private cgroup(lc: string): LcCgroup {
    return new LcCgroup(`lxc.payload.${this.containerName(lc)}`);
  }

  /** Freezes through the cgroup freezer directly: lxc-freeze polls once a second, too slow for a copy's cut. */
  async freeze(lc: string): Promise<void> {
    await this.requireInit(lc);
    await this.cgroup(lc).freeze();
  }

  async thaw(lc: string): Promise<void> {
    await this.cgroup(lc).thaw();
  }

  private async cgroupRead(lc: string, key: string): Promise<string> {
    return (await exec([...this.lxc('lxc-cgroup', lc), key])).stdout.trim();
  }

  async setWriteLimit(lc: string, devicePath: string, bytesPerSecond: number | null): Promise<void> {
    const rdev = fs.statSync(devicePath).rdev;
    const majMin = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;
    const [key, value] =
      hostCgroupVersion() === 2
        ? ['io.max', `${majMin} wbps=${bytesPerSecond ?? 'max'}`]
        : ['blkio.throttle.write_bps_device', `${majMin} ${bytesPerSecond ?? 0}`];
    await exec([...this.lxc('lxc-cgroup', lc), key, value]);
  }

  async usage(lc: string): Promise<ResourceUsage> {
    await this.requireInit(lc);
    const read = (key: string): Promise<string> => this.cgroupRead(lc, key);
    if (hostCgroupVersion() === 2) {
      const [quota = 'max'] = (await read('cpu.max')).split(' ');
      return {
        memoryBytes: Number(await read('memory.current')),
        memoryLimitBytes: Number(await read('memory.max')),
        cpuQuotaPercent: quota === 'max' ? 100 : Number(quota) / 1000,
        cpus: await read('cpuset.cpus'),
        pids: Number(await read('pids.current')),
        oomKills: Number(/oom_kill (\d+)/.exec(await read('memory.events'))?.[1] ?? 0),
      };
    }
    return {
      memoryBytes: Number(await read('memory.usage_in_bytes')),
      memoryLimitBytes: Number(await read('memory.limit_in_bytes')),
      cpuQuotaPercent: Number(await read('cpu.cfs_quota_us')) / 1000,
      cpus: await read('cpuset.cpus'),
      pids: Number(await read('pids.current')),
      oomKills: Number(/oom_kill (\d+)/.exec(await read('memory.oom_control'))?.[1] ?? 0),
    };
  }

  async readReports(lc: string): Promise<ControlReport[]> {
    return readOutbox(lc, this.controlDir(lc));
  }

  async acknowledgeReport(lc: string, id: string): Promise<void> {
    removeReport(this.controlDir(lc), id);
  }
}
