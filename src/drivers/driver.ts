/**
 * The resource partitioning mechanism (seed: 110) as a port. The namespace driver implements it with
 * Linux namespaces + cgroups; another driver (LXC, a VM) implements the same contract, so that the
 * disk copy, the switch and the patch run never depend on which driver runs an LC. Where an LC's
 * disks live is the disk store's business (`DiskStore`), not the driver's.
 */
import type { ExecOptions, ExecResult } from '../core/index.ts';

/**
 * Runtime state of an LC, as observed from the host:
 * - `stopped`: no process of the LC runs.
 * - `booting`: the init runs, but the LC has not yet reported that its start-up scripts finished.
 * - `running`: the init runs and start-up finished.
 * - `rebooting`: the LC asked for a reboot from inside; its supervisor is starting it again.
 * - `stopping`: an orderly shutdown is in progress.
 * - `crashed`: the init died without a shutdown being asked for (the console log tells why).
 */
export type LcRuntimeState = 'stopped' | 'booting' | 'running' | 'rebooting' | 'stopping' | 'crashed';

export interface DiskSpec {
  /** 'system', 'app', or another name for extra disks. */
  name: string;
  /** Name of the storage pool holding the disk. */
  pool: string;
  sizeMb: number;
  /** Where the disk appears inside the LC ('/' for the system disk). */
  mountPath: string;
}

export interface NicSpec {
  /** Name inside the LC, e.g. eth0. */
  name: string;
  bridge: string;
  mac: string;
  /** CIDR addresses, e.g. 198.18.0.10/24. */
  addresses: string[];
}

export interface LcSpec {
  name: string;
  image: string;
  /** CPU set, e.g. "0" or "0-1". */
  cpus: string;
  /** Share of the CPU set in percent of one CPU (100 = one whole CPU). */
  cpuSharePercent: number;
  memoryMb: number;
  disks: DiskSpec[];
  nics: NicSpec[];
}

export interface LcStatus {
  name: string;
  state: LcRuntimeState;
  /** Host pid of the LC's init (PID 1 inside), when running. */
  initPid?: number;
  /** How many times the LC rebooted itself since it was started. */
  reboots: number;
  /** Last boot time (ISO). */
  bootedAt?: string;
  consoleLog: string;
}

export interface StopResult {
  /** 'clean' when the LC shut down within the timeout, 'killed' when it had to be killed. */
  outcome: 'clean' | 'killed' | 'was-stopped';
  durationMs: number;
}

/** A message an LC sent over its control channel (e.g. the patch script's report, 1207). */
export interface ControlReport {
  lc: string;
  kind: string;
  /** When the LC wrote it (ISO). */
  at: string;
  body: unknown;
  /** Identifier of the report file, for acknowledging it. */
  id: string;
}

export interface ResourceUsage {
  memoryBytes: number;
  memoryLimitBytes: number;
  cpuQuotaPercent: number;
  cpus: string;
  pids: number;
  /** Processes the kernel killed inside the LC for exceeding its memory limit. */
  oomKills: number;
}

export interface PartitioningDriver {
  readonly name: string;

  /** Creates the LC's disks from the image and its devices; leaves nothing behind on failure. */
  create(spec: LcSpec): Promise<void>;
  /** Removes everything create() made (the LC must be stopped). Idempotent. */
  destroy(spec: LcSpec): Promise<void>;

  /** Boots the LC's own init; resolves when the init runs (not when start-up finished). */
  start(spec: LcSpec): Promise<void>;
  /** Orderly shutdown, then kill after timeoutMs. */
  stop(name: string, options?: { timeoutMs?: number }): Promise<StopResult>;
  /** Restarts the LC (as if it asked for a reboot from inside). */
  reboot(name: string): Promise<void>;
  status(name: string): Promise<LcStatus>;
  /** Waits until the LC reports that its start-up scripts have finished. */
  waitUntilUp(name: string, options?: { timeoutMs?: number }): Promise<void>;

  /** Runs argv inside the LC (its filesystem, namespaces and limits). */
  exec(name: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Runs a host program in the LC's network context (nft, ip, arping), for the network switch. */
  netExec(name: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Writes a file into the LC's system disk (running or not). */
  writeFile(spec: LcSpec, lcPath: string, data: string | Buffer, mode?: number): Promise<void>;
  /** Reads a file from the LC's system disk (running or not). */
  readFile(spec: LcSpec, lcPath: string): Promise<Buffer>;

  /**
   * Moves a NIC, with its MAC and addresses, from one LC to another. Resolves with the NIC's name in
   * the receiving LC (renamed when that LC already has a NIC of the same name).
   */
  moveNic(from: LcSpec, nicName: string, to: LcSpec): Promise<string>;

  /** Adds a NIC to an LC (hot-plug); it stays across the LC's reboots. */
  addNic(spec: LcSpec, nic: NicSpec): Promise<void>;
  /** Removes a NIC from an LC. */
  removeNic(spec: LcSpec, nicName: string): Promise<void>;

  /** Freezes / thaws every process of the LC (cgroup freezer). */
  freeze(name: string): Promise<void>;
  thaw(name: string): Promise<void>;
  /** Limits the LC's write bandwidth on the device of the given pool (bytes/s), or lifts it (null). */
  setWriteLimit(name: string, devicePath: string, bytesPerSecond: number | null): Promise<void>;
  usage(name: string): Promise<ResourceUsage>;
  /** Last lines of the LC's console log, for error messages. */
  consoleTail(name: string, lines?: number): string;

  /** Reports the LC sent over its control channel and that were not acknowledged yet. */
  readReports(name: string): Promise<ControlReport[]>;
  acknowledgeReport(name: string, id: string): Promise<void>;
}

/** What the composition root gives a driver when it builds it. */
export interface DriverEnvironment {
  /** The manager's state directory (a driver keeps its own files under it). */
  stateDir: string;
  /** Host tag that makes names of namespaces, cgroups and devices unique to this understudy host. */
  tag: string;
  /** Directory holding one runtime directory per LC. */
  runDir: string;
  /** Mount point of a storage pool. */
  poolPath: (pool: string) => string;
  /** Path of an image's read-only tree (what LCs are created from). */
  imagePath: (image: string) => string;
  /** Host directory of an LC's disk (the disk store's location of it). */
  diskPath: (spec: LcSpec, disk: string) => string;
}

/** Builds a driver; one per driver name in the composition root's registry. */
export type DriverFactory = (env: DriverEnvironment) => PartitioningDriver;
