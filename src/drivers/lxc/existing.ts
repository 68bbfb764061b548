/**
 * Reading an LXC container the operator already runs (e.g. under /var/lib/lxc), so that understudy can
 * take it over: where its root filesystem is, its NICs (MAC, bridge, addresses), its idmap when it is
 * unprivileged (its tree on disk is then shifted by the map's base), its limits. Features understudy
 * does not carry over are refused by name rather than silently dropped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, exec, isErrno } from '../../core/index.ts';

export interface ExistingNic {
  index: number;
  name: string;
  mac: string;
  bridge: string;
  addresses: string[];
}

export interface ExistingContainer {
  name: string;
  configFile: string;
  /** Host path of the root filesystem directory. */
  rootfs: string;
  nics: ExistingNic[];
  /** The container's uid/gid map when unprivileged: uid 0 inside is `uidBase` on disk. */
  idmap?: { uidBase: number; gidBase: number; size: number };
  memoryMb?: number;
  cpus?: string;
}

/** Keys understudy writes itself or that carry nothing it needs; everything else not understood is refused. */
const ignoredKeys = [
  /^lxc\.include$/,
  /^lxc\.arch$/,
  /^lxc\.uts\.name$/,
  /^lxc\.apparmor\.profile$/,
  /^lxc\.apparmor\.allow_incomplete$/,
  /^lxc\.mount\.auto$/,
  /^lxc\.tty\.max$/,
  /^lxc\.pty\.max$/,
  /^lxc\.signal\.(halt|reboot|stop)$/,
  /^lxc\.log\.(file|level)$/,
  /^lxc\.console\.(logfile|size)$/,
  /^lxc\.start\.(auto|delay|order)$/,
  /^lxc\.rootfs\.(options|mount)$/,
  /^lxc\.net\.\d+\.(flags|mtu|veth\.pair|ipv4\.gateway|ipv6\.address|ipv6\.gateway)$/,
];

function unsupported(container: string, what: string): UnderstudyError {
  return new UnderstudyError(
    'LXC_IMPORT_UNSUPPORTED',
    `The LXC container "${container}" uses ${what}, which understudy does not carry over`,
    {
      hint: 'Remove that setting from the container (or recreate it without it) and import again.',
    },
  );
}

/** Parses the container's config; throws LXC_IMPORT_UNSUPPORTED naming the first feature it cannot take. */
export function parseExistingConfig(name: string, configFile: string, text: string): ExistingContainer {
  const nics = new Map<number, ExistingNic & { type?: string }>();
  const nic = (index: number) => {
    let n = nics.get(index);
    if (!n) nics.set(index, (n = { index, name: `eth${index}`, mac: '', bridge: '', addresses: [] }));
    return n;
  };
  let rootfs: string | undefined;
  const uidMaps: number[][] = [];
  const gidMaps: number[][] = [];
  let memoryMb: number | undefined;
  let cpus: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    let m: RegExpExecArray | null;
    if (key === 'lxc.include') {
      if (/nesting\.conf$/.test(value)) throw unsupported(name, 'nesting (nesting.conf)');
      continue;
    }
    if (ignoredKeys.some((k) => k.test(key))) continue;
    if (key === 'lxc.rootfs.path') {
      const [kind, ...rest] = value.includes(':') ? value.split(':') : ['dir', value];
      if (kind !== 'dir') throw unsupported(name, `a "${kind}" root filesystem (${value})`);
      rootfs = rest.join(':');
    } else if (key === 'lxc.idmap') {
      const [type, ...numbers] = value.split(/\s+/);
      (type === 'u' ? uidMaps : gidMaps).push(numbers.map(Number));
    } else if ((m = /^lxc\.net\.(\d+)\.(type|link|hwaddr|name|ipv4\.address)$/.exec(key))) {
      const n = nic(Number(m[1]));
      if (m[2] === 'type') {
        if (value !== 'veth' && value !== 'empty')
          throw unsupported(name, `a "${value}" network device (${key})`);
        n.type = value;
      } else if (m[2] === 'link') n.bridge = value;
      else if (m[2] === 'hwaddr') {
        if (/x/i.test(value)) throw unsupported(name, `a MAC address template (${value}) instead of a MAC`);
        n.mac = value.toLowerCase();
      } else if (m[2] === 'name') n.name = value;
      else n.addresses.push(value.split(/\s+/)[0] ?? value);
    } else if (key === 'lxc.cgroup.memory.limit_in_bytes' || key === 'lxc.cgroup2.memory.max') {
      memoryMb = Math.floor(Number(value) / 1024 / 1024) || undefined;
    } else if (key === 'lxc.cgroup.cpuset.cpus' || key === 'lxc.cgroup2.cpuset.cpus') {
      cpus = value;
    } else if (key === 'lxc.mount.entry') {
      throw unsupported(name, `a mount of a host path (${value})`);
    } else if (/^lxc\.hook\./.test(key)) {
      throw unsupported(name, `a hook (${key})`);
    } else if (/^lxc\.cgroup2?\.devices\.allow$/.test(key)) {
      throw unsupported(name, `extra devices (${key} = ${value})`);
    } else if (/^lxc\.cgroup2?\./.test(key) || /^lxc\.cap\./.test(key) || /^lxc\.seccomp/.test(key)) {
      throw unsupported(name, `${key}`);
    } else {
      throw unsupported(name, `the setting ${key}`);
    }
  }
  if (!rootfs) throw unsupported(name, 'no lxc.rootfs.path');
  let idmap: ExistingContainer['idmap'];
  if (uidMaps.length > 0 || gidMaps.length > 0) {
    const [u] = uidMaps;
    const [g] = gidMaps;
    if (uidMaps.length !== 1 || gidMaps.length !== 1 || !u || !g || u[0] !== 0 || g[0] !== 0 || u[2] !== g[2])
      throw unsupported(name, 'an idmap other than one range from uid/gid 0');
    idmap = { uidBase: u[1] ?? 0, gidBase: g[1] ?? 0, size: u[2] ?? 0 };
  }
  const list = [...nics.values()].filter((n) => n.type !== 'empty').sort((a, b) => a.index - b.index);
  for (const n of list) {
    if (!n.mac) throw unsupported(name, `a NIC without a fixed MAC (lxc.net.${n.index}.hwaddr)`);
    if (!n.bridge) throw unsupported(name, `a NIC that is not on a bridge (lxc.net.${n.index}.link)`);
  }
  return {
    name,
    configFile,
    rootfs,
    nics: list.map(({ type: _type, ...n }) => n),
    idmap,
    memoryMb,
    cpus,
  };
}

/** Reads an existing container under `lxcPath`; refuses one that runs (LXC_IMPORT_RUNNING). */
export async function inspectExistingContainer(options: {
  lxcPath: string;
  name: string;
}): Promise<ExistingContainer> {
  const configFile = path.join(options.lxcPath, options.name, 'config');
  let text: string;
  try {
    text = fs.readFileSync(configFile, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT'))
      throw new UnderstudyError(
        'LXC_IMPORT_NOT_FOUND',
        `There is no LXC container "${options.name}" in ${options.lxcPath}`,
        {
          hint: 'Give its LXC path (--lxc-path, default /var/lib/lxc); `lxc-ls -P <path>` lists them.',
        },
      );
    throw error;
  }
  const info = await exec(['lxc-info', '-P', options.lxcPath, '-n', options.name, '-s'], { okCodes: [0, 1] });
  const state = /^State:\s+(\S+)/m.exec(info.stdout)?.[1] ?? 'STOPPED';
  if (state !== 'STOPPED')
    throw new UnderstudyError('LXC_IMPORT_RUNNING', `The LXC container "${options.name}" is ${state}`, {
      hint: `Stop it first (lxc-stop -P ${options.lxcPath} -n ${options.name}); its disk is copied while it is stopped.`,
    });
  const container = parseExistingConfig(options.name, configFile, text);
  if (!fs.existsSync(path.join(container.rootfs, 'etc')))
    throw new UnderstudyError(
      'LXC_IMPORT_UNSUPPORTED',
      `The root filesystem ${container.rootfs} of "${options.name}" has no /etc`,
    );
  return container;
}
