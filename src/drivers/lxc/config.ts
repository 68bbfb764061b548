/**
 * The LXC configuration of an LC, generated from its spec (never edited by hand, rewritten at every
 * start). The LC is an unprivileged system container:
 * - its own user namespace (userns.conf) with an idmap range of its own, so uid 0 inside is an
 *   unprivileged uid on the host;
 * - its disks are btrfs subvolumes mounted with `idmap=container`: the trees on disk keep uid 0 and need
 *   no chown shifting, and a disk copied from one LC boots in another LC with another range;
 * - LXC's default seccomp filter and device allow-list (common.conf); no AppArmor in this kernel;
 * - proc/sys mounted "mixed" (read-only where the host's settings live) and a cgroup namespace;
 * - no NIC from LXC: a start-host hook plugs the LC's NICs in on every boot (so NICs added or moved at
 *   run time survive a reboot from inside), and the control channel is bind-mounted at /run/understudy.
 */

export type CgroupVersion = 1 | 2;

/** Which signals LXC sends the LC's init to halt and to reboot it. */
export type InitKind = 'systemd' | 'busybox' | 'sysvinit';

export interface LxcIdmap {
  uidBase: number;
  gidBase: number;
  size: number;
}

export interface LxcLimits {
  cpus: string;
  /** 100 = one whole CPU. */
  cpuSharePercent: number;
  memoryMb: number;
  pidsMax: number;
  /** Write bandwidth limits on block devices ("major:minor" → bytes/s). */
  writeBps: { device: string; bytesPerSecond: number }[];
}

export interface LxcConfigInput {
  /** Host-unique container name (LXC also names the LC's cgroups after it). */
  containerName: string;
  hostname: string;
  rootfs: string;
  idmap: LxcIdmap;
  /** Other disks: host subvolume → absolute path inside the LC. */
  mounts: { source: string; target: string }[];
  controlDir: string;
  limits: LxcLimits;
  cgroupVersion: CgroupVersion;
  /** Whether the host's cgroup v1 memory controller accounts swap (memory.memsw.*). */
  memsw: boolean;
  init: InitKind;
  /** argv of the start-host hook; LXC appends the container name, "lxc" and "start-host". */
  startHostHook: readonly string[];
  consoleLog: string;
  lxcLog: string;
}

const signals: Record<InitKind, { halt: string; reboot: string }> = {
  // systemd: SIGRTMIN+3 halts, SIGINT is ctrl-alt-del (reboot).
  systemd: { halt: 'SIGRTMIN+3', reboot: 'SIGINT' },
  busybox: { halt: 'SIGUSR2', reboot: 'SIGTERM' },
  sysvinit: { halt: 'SIGPWR', reboot: 'SIGINT' },
};

function rejectNewline(key: string, value: string): string {
  // A value with a newline would inject another configuration key.
  if (/[\n\r]/.test(value)) throw new Error(`LXC config value of ${key} contains a newline`);
  return value;
}

/** The cgroup keys of the limits, for the host's cgroup version. */
export function cgroupLines(limits: LxcLimits, version: CgroupVersion, memsw: boolean): string[] {
  const quotaUs = Math.round((limits.cpuSharePercent / 100) * 100_000);
  const memoryBytes = limits.memoryMb * 1024 * 1024;
  if (version === 2) {
    return [
      `lxc.cgroup2.cpuset.cpus = ${limits.cpus}`,
      `lxc.cgroup2.cpu.max = ${quotaUs} 100000`,
      `lxc.cgroup2.memory.max = ${memoryBytes}`,
      'lxc.cgroup2.memory.swap.max = 0',
      `lxc.cgroup2.pids.max = ${limits.pidsMax}`,
      ...limits.writeBps.map((w) => `lxc.cgroup2.io.max = ${w.device} wbps=${w.bytesPerSecond}`),
    ];
  }
  return [
    `lxc.cgroup.cpuset.cpus = ${limits.cpus}`,
    'lxc.cgroup.cpu.cfs_period_us = 100000',
    `lxc.cgroup.cpu.cfs_quota_us = ${quotaUs}`,
    `lxc.cgroup.memory.limit_in_bytes = ${memoryBytes}`,
    ...(memsw ? [`lxc.cgroup.memory.memsw.limit_in_bytes = ${memoryBytes}`] : []),
    `lxc.cgroup.pids.max = ${limits.pidsMax}`,
    ...limits.writeBps.map(
      (w) => `lxc.cgroup.blkio.throttle.write_bps_device = ${w.device} ${w.bytesPerSecond}`,
    ),
  ];
}

/** The whole configuration file. */
export function lxcConfig(input: LxcConfigInput): string {
  const { idmap } = input;
  const relative = (target: string): string => target.replace(/^\/+/, '');
  const lines = [
    '# Written by understudy at every start of this LC; changes made here are lost.',
    'lxc.include = /usr/share/lxc/config/common.conf',
    'lxc.include = /usr/share/lxc/config/userns.conf',
    'lxc.arch = linux64',
    `lxc.uts.name = ${input.hostname}`,
    `lxc.idmap = u 0 ${idmap.uidBase} ${idmap.size}`,
    `lxc.idmap = g 0 ${idmap.gidBase} ${idmap.size}`,
    `lxc.rootfs.path = dir:${input.rootfs}`,
    'lxc.rootfs.options = idmap=container',
    'lxc.apparmor.profile = unconfined',
    'lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed',
    ...input.mounts.map(
      (m) => `lxc.mount.entry = ${m.source} ${relative(m.target)} none bind,create=dir,idmap=container 0 0`,
    ),
    // /run is mounted here (not by the init) so that the control channel below stays visible in it.
    'lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=755,size=64m 0 0',
    `lxc.mount.entry = ${input.controlDir} run/understudy none bind,create=dir 0 0`,
    'lxc.net.0.type = empty',
    `lxc.hook.start-host = ${input.startHostHook.join(' ')}`,
    `lxc.signal.halt = ${signals[input.init].halt}`,
    `lxc.signal.reboot = ${signals[input.init].reboot}`,
    ...cgroupLines(input.limits, input.cgroupVersion, input.memsw),
    `lxc.console.logfile = ${input.consoleLog}`,
    `lxc.log.file = ${input.lxcLog}`,
    'lxc.log.level = WARN',
  ];
  return `${lines.map((line) => rejectNewline(line.split(' = ')[0] ?? line, line)).join('\n')}\n`;
}
