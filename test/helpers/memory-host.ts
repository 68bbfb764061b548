/**
 * An in-memory host that implements the two ports a patch run needs — `PartitioningDriver` and
 * `DiskStore` — with no namespace, no disk and no network: LCs are records with a state, disks are
 * maps of file contents, the network is a model of addresses, steering tables and ARP settings that
 * the switch's commands act on, and the service inside an LC answers from its disks. A test of the
 * run's logic uses it to prove that the ports are enough; the end-to-end tests use the real driver.
 *
 * The service: it runs while its LC runs; `/health` answers 200 unless the system disk holds
 * `/etc/broken`; `/version` answers the system disk's `/etc/demo-version`. The patch script of the
 * standby: at boot, every patch marked `yes` in the patch table is applied; a patch file `version X`
 * writes X to `/etc/demo-version`, a patch file `fail` fails with exit 1.
 */
import type { ExecOptions, ExecResult, Logger } from '../../src/core/index.ts';
import type { Db } from '../../src/store/index.ts';
import type {
  ControlReport,
  LcRuntimeState,
  LcSpec,
  LcStatus,
  NicSpec,
  PartitioningDriver,
  ResourceUsage,
  StopResult,
} from '../../src/drivers/index.ts';
import {
  recoverInterruptedCopies,
  type CopySession,
  type DiskRef,
  type DiskStore,
  type OpenCopyOptions,
  type SyncOptions,
  type SyncResult,
  type TreeCheckResult,
} from '../../src/disk-copy/index.ts';
import type { HostContext, HostNetwork } from '../../src/host/index.ts';
import { openMemoryCopy, removeMemoryCopy, type Files, type MemoryCopyHooks } from './memory-copy.ts';

interface MemoryNic {
  mac: string;
  addresses: string[];
}

interface MemoryLc {
  spec: LcSpec;
  state: LcRuntimeState;
  reboots: number;
  nics: Map<string, MemoryNic>;
  steer: string | undefined;
  sysctl: Map<string, string>;
  frozen: boolean;
  writeLimits: Map<string, number>;
  reports: ControlReport[];
  signals: string[];
}

const ok = (argv: readonly string[], stdout = '', exitCode = 0): ExecResult => ({
  argv,
  exitCode,
  signal: null,
  stdout,
  stderr: '',
  durationMs: 0,
});

const hostOf = (cidr: string): string => cidr.split('/')[0] ?? '';

/** The disks of every LC, as file maps; shared by the driver (files inside an LC) and the disk store. */
export class MemoryDisks {
  readonly volumes = new Map<string, Files>();
  key = (ref: DiskRef): string => {
    if (!ref.lc.disks.some((d) => d.name === ref.disk))
      throw new Error(`${ref.lc.name} has no disk ${ref.disk}`);
    return `${ref.lc.name}/${ref.disk}`;
  };
  /** The disk of `spec` that holds `lcPath`, and the path inside it. */
  locate(spec: LcSpec, lcPath: string): { files: Files; path: string } {
    const disk = [...spec.disks]
      .sort((a, b) => b.mountPath.length - a.mountPath.length)
      .find((d) => d.mountPath === '/' || lcPath === d.mountPath || lcPath.startsWith(`${d.mountPath}/`));
    if (!disk) throw new Error(`${spec.name} has no disk for ${lcPath}`);
    const files = this.volumes.get(`${spec.name}/${disk.name}`);
    if (!files) throw new Error(`the disk ${spec.name}/${disk.name} does not exist`);
    return { files, path: disk.mountPath === '/' ? lcPath : lcPath.slice(disk.mountPath.length) || '/' };
  }
  read(spec: LcSpec, lcPath: string): Buffer | undefined {
    const { files, path } = this.locate(spec, lcPath);
    return files.get(path);
  }
  write(spec: LcSpec, lcPath: string, data: string | Buffer): void {
    const { files, path } = this.locate(spec, lcPath);
    files.set(path, Buffer.from(data));
  }
}

export class MemoryDiskStore implements DiskStore {
  readonly name = 'memory';
  /** Every operation, in order (e.g. "copy lc1/app -> lc2/app"). */
  readonly log: string[] = [];
  /** Throws before the named operation ("sync", "copyLive": opening a copy) when set: a fault of the store. */
  failNext: string | undefined;
  constructor(readonly disks: MemoryDisks) {}

  private fault(op: string): void {
    if (this.failNext === op) {
      this.failNext = undefined;
      throw new Error(`injected failure of ${op}`);
    }
  }

  mountpoint(ref: DiskRef): string {
    return `/memory/${this.disks.key(ref)}`;
  }
  device(ref: DiskRef): string {
    return `/dev/memory-${ref.lc.disks.find((d) => d.name === ref.disk)?.pool ?? 'none'}`;
  }
  /** Hooks into the next copy's primitives (a writer during its sends, a failure at one of them). */
  copyHooks: MemoryCopyHooks | undefined;
  async openCopy(o: OpenCopyOptions<DiskRef>): Promise<CopySession> {
    this.fault('copyLive');
    const from = this.disks.key(o.from);
    const to = this.disks.key(o.to);
    return openMemoryCopy({
      volumes: this.disks.volumes,
      from,
      to,
      jobId: o.jobId,
      ...(o.mode ? { mode: o.mode } : {}),
      ...(this.copyHooks ? { hooks: this.copyHooks } : {}),
      onFinished: () => {
        this.setBase(from, to, 0);
        this.log.push(`copy ${from} -> ${to}`);
      },
    });
  }
  async setAside(ref: DiskRef, tag: string): Promise<void> {
    const key = this.disks.key(ref);
    const aside = `${key}.before-${tag}`;
    if (this.disks.volumes.has(aside)) {
      this.disks.volumes.delete(key);
      return;
    }
    const current = this.disks.volumes.get(key);
    if (current) this.disks.volumes.set(aside, current);
    this.disks.volumes.delete(key);
    this.log.push(`aside ${key}`);
  }
  async restoreAside(ref: DiskRef, tag: string): Promise<void> {
    const key = this.disks.key(ref);
    const aside = this.disks.volumes.get(`${key}.before-${tag}`);
    if (!aside) return;
    this.disks.volumes.set(key, aside);
    this.disks.volumes.delete(`${key}.before-${tag}`);
    this.log.push(`restore ${key}`);
  }
  async dropAside(ref: DiskRef, tag: string): Promise<void> {
    this.disks.volumes.delete(`${this.disks.key(ref)}.before-${tag}`);
  }
  async removeCopyLeftovers(): Promise<void> {}
  async flush(): Promise<void> {}
  async prepareFinalSync(): Promise<void> {}
  /**
   * Like the btrfs store: with a base (set by a live copy and every sync) only the paths either side
   * changed since are carried, by the rule; without one a data disk is copied whole and a system
   * disk (`receiver-wins`) is skipped.
   */
  async sync(from: DiskRef, to: DiskRef, options: SyncOptions = {}): Promise<SyncResult> {
    this.fault('sync');
    const rule = options.rule ?? 'sender-wins';
    const fromKey = this.disks.key(from);
    const toKey = this.disks.key(to);
    const source = this.disks.volumes.get(fromKey);
    const target = this.disks.volumes.get(toKey);
    if (!source) throw new Error(`the source ${fromKey} does not exist`);
    if (!target) throw new Error(`the target ${toKey} does not exist`);
    const pair = [fromKey, toKey].sort().join('|');
    const base = this.bases.get(pair);
    const result: SyncResult = {
      from: fromKey,
      to: toKey,
      method: base ? 'incremental' : rule === 'receiver-wins' ? 'skipped' : 'whole',
      rule,
      snapshotMs: 0,
      diffMs: 0,
      copyMs: 0,
      verifyMs: 0,
      bytes: 0,
      files: 0,
      conflicts: { count: 0, paths: [] },
      generation: base ? base.generation + 1 : 0,
      durationMs: 0,
    };
    if (result.method === 'skipped') return result;
    const changed = (was: Files | undefined, now: Files): Set<string> => {
      if (!was) return new Set([...now.keys(), ...target.keys()]);
      const out = new Set<string>();
      for (const p of new Set([...was.keys(), ...now.keys()]))
        if (!was.get(p)?.equals(now.get(p) ?? Buffer.alloc(0)) || was.has(p) !== now.has(p)) out.add(p);
      return out;
    };
    const sent = changed(base?.sides.get(fromKey), source);
    const received = base ? changed(base.sides.get(toKey), target) : new Set<string>();
    const paths =
      rule === 'sender-wins'
        ? new Set([...sent, ...received])
        : new Set([...sent].filter((p) => !received.has(p)));
    const conflicts = rule === 'receiver-wins' ? [...sent].filter((p) => received.has(p)) : [];
    for (const p of paths) {
      const data = source.get(p);
      if (data) {
        target.set(p, Buffer.from(data));
        result.bytes += data.length;
      } else target.delete(p);
    }
    result.files = paths.size;
    result.conflicts = { count: conflicts.length, paths: conflicts };
    this.setBase(fromKey, toKey, result.generation);
    this.log.push(`sync ${fromKey} -> ${toKey}`);
    return result;
  }
  async settled(): Promise<void> {}
  /** Like the btrfs store: the two sides as the last sync left them, compared path by path. */
  async verifyFinalSync(from: DiskRef, to: DiskRef): Promise<TreeCheckResult> {
    const fromKey = this.disks.key(from);
    const toKey = this.disks.key(to);
    const base = this.bases.get([fromKey, toKey].sort().join('|'));
    const a = base?.sides.get(fromKey);
    const b = base?.sides.get(toKey);
    const result = { from: fromKey, to: toKey, entries: 0, excluded: 0, bytes: 0, durationMs: 0 };
    if (!a || !b) return { ...result, result: 'skipped', reason: 'no sync base', paths: [] };
    const all = new Set([...a.keys(), ...b.keys()]);
    const paths = [...all].filter((p) => !a.get(p)?.equals(b.get(p) ?? Buffer.alloc(0))).sort();
    this.log.push(`verify ${fromKey} -> ${toKey}`);
    return { ...result, result: paths.length ? 'mismatch' : 'ok', paths, entries: all.size };
  }
  /**
   * A fault of the standby's copy that no sync sees: `path` of the disk differs from what it was
   * synced to, and so does its sync base (as if it had been so when the pair was last made equal).
   */
  corruptUnseen(disk: DiskRef, path: string, data: string): void {
    const key = this.disks.key(disk);
    this.disks.volumes.get(key)?.set(path, Buffer.from(data));
    for (const base of this.bases.values()) base.sides.get(key)?.set(path, Buffer.from(data));
  }
  /** The sync bases of disk pairs: a copy of each side when they were last made equal. */
  readonly bases = new Map<string, { generation: number; sides: Map<string, Files> }>();
  private setBase(one: string, other: string, generation: number): void {
    const copy = (key: string): Files =>
      new Map(
        [...(this.disks.volumes.get(key) ?? new Map<string, Buffer>())].map(([p, b]) => [p, Buffer.from(b)]),
      );
    this.bases.set([one, other].sort().join('|'), {
      generation,
      sides: new Map([
        [one, copy(one)],
        [other, copy(other)],
      ]),
    });
  }
  async removeCopy(names: {
    destination: string;
    sourceStage: string | null;
    destinationStage: string | null;
  }) {
    removeMemoryCopy(this.disks.volumes, names);
  }
  recoverCopies(db: Db, options: { logger?: Logger } = {}): Promise<string[]> {
    return recoverInterruptedCopies(db, this, options);
  }
}

export class MemoryDriver implements PartitioningDriver {
  readonly name = 'memory';
  readonly lcs = new Map<string, MemoryLc>();
  /** argv prefixes (joined by spaces) that fail with exit 1 in the named LC: injected network faults. */
  readonly failing = new Map<string, Set<string>>();
  /** How long the patch script of a booting standby takes before it reports (a slow patch). */
  bootDelayMs = 0;
  private reportSeq = 0;

  constructor(private readonly disks: MemoryDisks) {}

  private lc(name: string): MemoryLc {
    const lc = this.lcs.get(name);
    if (!lc) throw new Error(`no LC ${name}`);
    return lc;
  }

  async create(spec: LcSpec): Promise<void> {
    for (const disk of spec.disks) {
      const files: Files = new Map();
      if (disk.mountPath === '/') files.set('/etc/demo-version', Buffer.from('1.0.0'));
      this.disks.volumes.set(`${spec.name}/${disk.name}`, files);
    }
    const nics = new Map<string, MemoryNic>(
      spec.nics.map((n) => [n.name, { mac: n.mac, addresses: [...n.addresses] }]),
    );
    nics.set('lo', { mac: '00:00:00:00:00:00', addresses: ['127.0.0.1/8'] });
    this.lcs.set(spec.name, {
      spec,
      state: 'stopped',
      reboots: 0,
      nics,
      steer: undefined,
      sysctl: new Map(),
      frozen: false,
      writeLimits: new Map(),
      reports: [],
      signals: [],
    });
  }
  async destroy(spec: LcSpec): Promise<void> {
    this.lcs.delete(spec.name);
    for (const key of [...this.disks.volumes.keys()])
      if (key.startsWith(`${spec.name}/`)) this.disks.volumes.delete(key);
  }
  async start(spec: LcSpec): Promise<void> {
    const lc = this.lc(spec.name);
    lc.spec = spec;
    lc.state = 'running';
    this.boot(lc);
  }
  async stop(name: string): Promise<StopResult> {
    const lc = this.lc(name);
    const was = lc.state;
    lc.state = 'stopped';
    return { outcome: was === 'stopped' ? 'was-stopped' : 'clean', durationMs: 0 };
  }
  async reboot(name: string): Promise<void> {
    const lc = this.lc(name);
    lc.reboots += 1;
    lc.state = 'running';
    this.boot(lc);
  }
  async status(name: string): Promise<LcStatus> {
    const lc = this.lc(name);
    return { name, state: lc.state, reboots: lc.reboots, consoleLog: `/memory/${name}/console` };
  }
  async waitUntilUp(name: string): Promise<void> {
    if (this.lc(name).state !== 'running') throw new Error(`${name} is not running`);
  }

  /** The patch execution script at boot (seed 1201–1207). */
  private boot(lc: MemoryLc): void {
    const table = this.disks.read(lc.spec, '/var/lib/understudy/patch-table')?.toString();
    if (!table || !table.includes('|yes|')) return;
    const results: { name: string; result: 'ok' | 'failed'; exitCode: number; appliedAt: string }[] = [];
    const lines = table
      .trim()
      .split('\n')
      .map((line) => {
        const fields = line.split('|');
        const name = fields[0] ?? '';
        if (fields[5] !== 'yes') return line;
        const patch = this.disks.read(lc.spec, `/var/lib/understudy/patches/${name}`)?.toString() ?? '';
        const version = /^version (\S+)/.exec(patch)?.[1];
        const exitCode = version ? 0 : 1;
        if (version) this.disks.write(lc.spec, '/etc/demo-version', version);
        const appliedAt = new Date().toISOString();
        results.push({ name, result: exitCode === 0 ? 'ok' : 'failed', exitCode, appliedAt });
        return [
          name,
          ...fields.slice(1, 5),
          'no',
          exitCode === 0 ? 'ok' : 'failed',
          String(exitCode),
          appliedAt,
        ].join('|');
      });
    this.disks.write(lc.spec, '/var/lib/understudy/patch-table', `${lines.join('\n')}\n`);
    const report = {
      lc: lc.spec.name,
      kind: 'patch-report',
      at: new Date().toISOString(),
      body: results,
      id: `report-${++this.reportSeq}`,
    };
    if (this.bootDelayMs === 0) lc.reports.push(report);
    else setTimeout(() => lc.reports.push(report), this.bootDelayMs);
  }

  async exec(name: string, argv: readonly string[]): Promise<ExecResult> {
    const lc = this.lc(name);
    // The switch signals the service through its pid file: sh -c '<script>' sh <SIGNAL> <pidfile>.
    if (argv[0] === 'sh' && argv[3] === 'sh' && argv[4]) lc.signals.push(argv[4]);
    return ok(argv);
  }

  /** What an HTTP GET of `url` from inside `from` gets: the LC that holds the address answers. */
  private http(from: MemoryLc | undefined, url: string): { status: number; body: string } {
    const parsed = new URL(url);
    const holds = (lc: MemoryLc, devs: (dev: string) => boolean): boolean =>
      [...lc.nics].some(
        ([dev, nic]) => devs(dev) && nic.addresses.some((a) => hostOf(a) === parsed.hostname),
      );
    const target =
      (from && holds(from, () => true) ? from : undefined) ??
      [...this.lcs.values()].find((lc) => holds(lc, (dev) => dev !== 'lo'));
    if (!target || target.state !== 'running') return { status: 0, body: '' };
    const disks = this.disks;
    if (parsed.pathname === '/version')
      return {
        status: 200,
        body: JSON.stringify({ version: disks.read(target.spec, '/etc/demo-version')?.toString() }),
      };
    if (parsed.pathname === '/health')
      return disks.read(target.spec, '/etc/broken')
        ? { status: 503, body: 'broken' }
        : { status: 200, body: 'ok' };
    return { status: 404, body: '' };
  }

  async netExec(name: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const lc = this.lc(name);
    const [cmd, ...rest] = argv;
    const okCodes = options?.okCodes ?? [0];
    const fail = (code: number): ExecResult => {
      if (okCodes.includes(code)) return ok(argv, '', code);
      throw new Error(`${name}: ${argv.join(' ')} failed with exit ${code}`);
    };
    for (const prefix of this.failing.get(name) ?? []) if (argv.join(' ').startsWith(prefix)) return fail(1);
    if (cmd === 'ip' && rest.join(' ') === '-j link show') {
      const links = [...lc.nics].map(([dev, nic]) => ({
        ifname: dev,
        address: nic.mac,
        link_type: dev === 'lo' ? 'loopback' : 'ether',
      }));
      return ok(argv, JSON.stringify(links));
    }
    if (cmd === 'ip' && rest[0] === '-j') {
      const nic = lc.nics.get(rest[rest.length - 1] ?? '');
      if (!nic) return fail(1);
      return ok(
        argv,
        JSON.stringify([
          {
            address: nic.mac,
            addr_info: nic.addresses.map((a) => ({ local: hostOf(a), prefixlen: Number(a.split('/')[1]) })),
          },
        ]),
      );
    }
    if (cmd === 'ip' && rest[0] === '-o') {
      const nic = lc.nics.get(rest[rest.length - 1] ?? '');
      return ok(argv, (nic?.addresses ?? []).map((a) => `2: eth0    inet ${a} scope global\n`).join(''));
    }
    if (cmd === 'ip' && rest[0] === 'link')
      return lc.nics.has(rest[rest.length - 1] ?? '') ? ok(argv) : fail(1);
    if (cmd === 'ip' && rest[0] === 'addr') {
      const [, op, cidr = '', , dev = ''] = rest;
      const nic = lc.nics.get(dev);
      if (!nic) return fail(1);
      if (op === 'replace' && !nic.addresses.includes(cidr)) nic.addresses.push(cidr);
      if (op === 'del') {
        if (!nic.addresses.includes(cidr)) return fail(2);
        nic.addresses = nic.addresses.filter((a) => a !== cidr);
      }
      return ok(argv);
    }
    // The steering table's next hop (a permanent neighbour entry): nothing to model beyond success.
    if (cmd === 'ip' && rest[0] === 'neigh') return ok(argv);
    if (cmd === 'sysctl') {
      if (rest[0] === '-n') return ok(argv, lc.sysctl.get(rest[1] ?? '') ?? '0');
      const [key = '', value = ''] = (rest[rest.length - 1] ?? '').split('=');
      lc.sysctl.set(key, value);
      return ok(argv);
    }
    if (cmd === 'nft') {
      if (rest[0] === '-f') lc.steer = String(options?.input);
      else lc.steer = undefined;
      return ok(argv);
    }
    if (cmd === 'arping') return ok(argv);
    if (cmd === 'ss') return ok(argv, '');
    if (cmd === 'curl') {
      const url = argv[argv.length - 1] ?? '';
      const answer = this.http(lc, url);
      if (answer.status === 0) return fail(7);
      const toStdout = argv[argv.indexOf('-o') + 1] === '-';
      return ok(argv, toStdout ? `${answer.body}\n${answer.status}` : String(answer.status));
    }
    throw new Error(`the memory driver does not know ${argv.join(' ')}`);
  }

  /** A command in the host's own network (the clients' side of the bridge): an HTTP GET with curl. */
  async fromHost(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    if (argv[0] !== 'curl') throw new Error(`the memory host does not know ${argv.join(' ')}`);
    const answer = this.http(undefined, argv[argv.length - 1] ?? '');
    if (answer.status === 0) {
      if ((options?.okCodes ?? [0]).includes(7)) return ok(argv, '', 7);
      throw new Error(`host: ${argv.join(' ')} failed with exit 7`);
    }
    const toStdout = argv[argv.indexOf('-o') + 1] === '-';
    return ok(argv, toStdout ? `${answer.body}\n${answer.status}` : String(answer.status));
  }

  async writeFile(spec: LcSpec, lcPath: string, data: string | Buffer): Promise<void> {
    this.disks.write(spec, lcPath, data);
  }
  async readFile(spec: LcSpec, lcPath: string): Promise<Buffer> {
    const data = this.disks.read(spec, lcPath);
    if (!data) throw Object.assign(new Error(`ENOENT: ${spec.name}:${lcPath}`), { code: 'ENOENT' });
    return data;
  }
  async moveNic(from: LcSpec, nicName: string, to: LcSpec): Promise<string> {
    const source = this.lc(from.name);
    const target = this.lc(to.name);
    const nic = source.nics.get(nicName);
    if (!nic) throw new Error(`${from.name} has no NIC ${nicName}`);
    source.nics.delete(nicName);
    let name = nicName;
    for (let i = 1; target.nics.has(name); i++) name = `eth${i}`;
    // As the real drivers: the move drops the device's addresses, the spec's are set again.
    const spec = from.nics.find((n) => n.name === nicName);
    target.nics.set(name, { mac: nic.mac, addresses: [...(spec?.addresses ?? nic.addresses)] });
    return name;
  }
  async addNic(spec: LcSpec, nic: NicSpec): Promise<void> {
    this.lc(spec.name).nics.set(nic.name, { mac: nic.mac, addresses: [...nic.addresses] });
  }
  async removeNic(spec: LcSpec, nicName: string): Promise<void> {
    this.lc(spec.name).nics.delete(nicName);
  }
  async freeze(name: string): Promise<void> {
    this.lc(name).frozen = true;
  }
  async thaw(name: string): Promise<void> {
    this.lc(name).frozen = false;
  }
  async setWriteLimit(name: string, device: string, bytesPerSecond: number | null): Promise<void> {
    const lc = this.lc(name);
    if (bytesPerSecond === null) lc.writeLimits.delete(device);
    else lc.writeLimits.set(device, bytesPerSecond);
  }
  async usage(name: string): Promise<ResourceUsage> {
    const lc = this.lc(name);
    return {
      memoryBytes: 0,
      memoryLimitBytes: lc.spec.memoryMb * 1024 ** 2,
      cpuQuotaPercent: lc.spec.cpuSharePercent,
      cpus: lc.spec.cpus,
      pids: lc.state === 'running' ? 1 : 0,
      oomKills: 0,
    };
  }
  consoleTail(name: string): string {
    return `(console of ${name})`;
  }
  async readReports(name: string): Promise<ControlReport[]> {
    return [...this.lc(name).reports];
  }
  async acknowledgeReport(name: string, id: string): Promise<void> {
    const lc = this.lc(name);
    lc.reports = lc.reports.filter((r) => r.id !== id);
  }

  /** The LCs that hold `address` on a NIC other than lo. */
  holders(address: string): string[] {
    return [...this.lcs.values()]
      .filter((lc) =>
        [...lc.nics].some(
          ([dev, nic]) => dev !== 'lo' && nic.addresses.some((a) => hostOf(a) === hostOf(address)),
        ),
      )
      .map((lc) => lc.spec.name);
  }
}

export interface MemoryHost {
  host: HostContext;
  driver: MemoryDriver;
  disks: MemoryDiskStore;
  files: MemoryDisks;
}

export function createMemoryHost(network?: Partial<HostNetwork>): MemoryHost {
  const files = new MemoryDisks();
  const driver = new MemoryDriver(files);
  const disks = new MemoryDiskStore(files);
  const full: HostNetwork = {
    tag: 'mem',
    bridge: 'usmem0',
    subnet: '198.18.0.0/24',
    hostAddress: '198.18.0.1/24',
    ...network,
  } as HostNetwork;
  const hostExec = (argv: readonly string[], options?: ExecOptions): Promise<ExecResult> =>
    driver.fromHost(argv, options);
  return { host: { network: full, driver, disks, hostExec }, driver, disks, files };
}
