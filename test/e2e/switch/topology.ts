/**
 * A throw-away switch topology: a bridge, two "LC" network namespaces each running the demo service,
 * and a client namespace, all in a random 198.19.x.0/24 with names unique to the run. `destroy()`
 * kills only the processes it started (by pid) and deletes only what it created.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec, sleep, spawnProcess, type ExecOptions, type SpawnedProcess } from '../../../src/core/index.ts';
import { serviceSide, type MoveNic, type SwitchSide } from '../../../src/switch/index.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const demoServer = path.join(repo, 'assets/demo-service/server.mjs');

export interface FixtureLc {
  name: string;
  ns: string;
  /** NIC name -> { mac, addresses } as created. */
  nics: Record<string, { mac: string; addresses: string[] }>;
  dataDir: string;
  /** Where the service's pid file is (its data dir, unless the data dir was given). */
  stateDir: string;
  server?: SpawnedProcess;
  serverPid?: number;
}

export interface Topology {
  tag: string;
  bridge: string;
  /** "198.19.N" */
  net: string;
  port: number;
  lc1: FixtureLc;
  lc2: FixtureLc;
  clientNs: string;
  clientAddress: string;
  side(lc: FixtureLc): SwitchSide;
  moveNic: MoveNic;
  startServer(lc: FixtureLc): Promise<void>;
  stopServer(lc: FixtureLc, signal?: NodeJS.Signals): Promise<void>;
  destroy(): Promise<void>;
}

export interface TopologyOptions {
  /** NICs of each LC: name -> addresses (CIDR). */
  lc1Nics: Record<string, string[]>;
  lc2Nics: Record<string, string[]>;
  port?: number;
  /** Start the demo service in both LCs (default true). */
  servers?: boolean;
  /**
   * The demo service's data directory in each LC (e.g. a disk the final sync carries); created and
   * removed by the caller. Default: a temporary directory of the topology.
   */
  dataDirs?: { lc1: string; lc2: string };
}

const run = (argv: string[], options?: ExecOptions): ReturnType<typeof exec> =>
  exec(argv, { timeoutMs: 15_000, ...options });

/** Host octet N of a random 198.19.N.0/24 (avoids 0 and 255). */
function randomNet(): string {
  return `198.19.${1 + (randomBytes(1)[0]! % 254)}`;
}

export async function createTopology(options: TopologyOptions): Promise<Topology> {
  const tag = randomBytes(2).toString('hex');
  const net = randomNet();
  const port = options.port ?? 8080;
  const bridge = `brsw${tag}`;
  const created: { netns: string[]; links: string[]; dirs: string[] } = { netns: [], links: [], dirs: [] };
  const lcs: FixtureLc[] = [];
  let vethCount = 0;

  const addNic = async (
    ns: string,
    nic: string,
    addresses: string[],
  ): Promise<{ mac: string; addresses: string[] }> => {
    const host = `vsw${tag}${vethCount++}`;
    await run(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', nic, 'netns', ns]);
    created.links.push(host);
    await run(['ip', 'link', 'set', host, 'master', bridge, 'up']);
    for (const a of addresses) await run(['ip', '-n', ns, 'addr', 'add', a, 'dev', nic]);
    await run(['ip', '-n', ns, 'link', 'set', nic, 'up']);
    const info = JSON.parse((await run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', nic])).stdout) as {
      address: string;
    }[];
    return { mac: info[0]!.address, addresses };
  };
  const addNs = async (name: string): Promise<string> => {
    const ns = `sw${tag}${name}`;
    await run(['ip', 'netns', 'add', ns]);
    created.netns.push(ns);
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    // Several NICs on one segment: each answers ARP only for its own addresses (no ARP flux).
    await run(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.conf.all.arp_ignore=1']);
    return ns;
  };

  const destroy = async (): Promise<void> => {
    for (const lc of lcs) await topology.stopServer(lc, 'SIGKILL').catch(() => undefined);
    for (const ns of created.netns)
      await run(['ip', 'netns', 'del', ns], { okCodes: [0, 1] }).catch(() => undefined);
    for (const l of created.links)
      await run(['ip', 'link', 'del', l], { okCodes: [0, 1] }).catch(() => undefined);
    await run(['ip', 'link', 'del', bridge], { okCodes: [0, 1] }).catch(() => undefined);
    for (const d of created.dirs) fs.rmSync(d, { recursive: true, force: true });
  };

  const topology: Topology = {
    tag,
    bridge,
    net,
    port,
    lc1: undefined as unknown as FixtureLc,
    lc2: undefined as unknown as FixtureLc,
    clientNs: '',
    clientAddress: `${net}.100`,
    side(lc) {
      // The fixture's "inside the LC" is the host itself: the pid file is a host path.
      return serviceSide({
        name: lc.name,
        netExec: (argv, opts) => run(['ip', 'netns', 'exec', lc.ns, ...argv], opts),
        exec: (argv, opts) => run([...argv], opts),
        servicePidFile: path.join(lc.stateDir, 'server.pid'),
      });
    },
    moveNic: async ({ from, to, nic, addresses }) => {
      const src = lcs.find((l) => l.name === from.name)!;
      const dst = lcs.find((l) => l.name === to.name)!;
      await run(['ip', '-n', src.ns, 'link', 'set', nic, 'netns', dst.ns]);
      for (const a of addresses) await run(['ip', '-n', dst.ns, 'addr', 'add', a, 'dev', nic]);
      await run(['ip', '-n', dst.ns, 'link', 'set', nic, 'up']);
      return nic;
    },
    async startServer(lc) {
      const pidFile = path.join(lc.stateDir, 'server.pid');
      fs.rmSync(pidFile, { force: true });
      // UNDERSTUDY_SERVICE_LOG_DIR: the services' own logs are appended to <dir>/<lc>.log (a diagnosis).
      const logDir = process.env.UNDERSTUDY_SERVICE_LOG_DIR;
      const script = logDir ? 'hostname "$1"; exec node "$2" >> "$3"' : 'hostname "$1"; exec node "$2"';
      const logFile = logDir ? [path.join(logDir, `${lc.name}.log`)] : [];
      lc.server = spawnProcess(
        [
          'ip',
          'netns',
          'exec',
          lc.ns,
          'unshare',
          '--uts',
          'sh',
          '-c',
          script,
          'sh',
          lc.name,
          demoServer,
          ...logFile,
        ],
        {
          env: { DEMO_LISTEN: `0.0.0.0:${port}`, DEMO_DATA_DIR: lc.dataDir, DEMO_PID_FILE: pidFile },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      lc.serverPid = lc.server.child.pid;
      for (let i = 0; i < 200 && !fs.existsSync(pidFile); i++) await sleep(25);
      if (!fs.existsSync(pidFile)) throw new Error(`the demo service did not start in ${lc.name}`);
    },
    async stopServer(lc, signal = 'SIGTERM') {
      const server = lc.server;
      if (!server || lc.serverPid === undefined) return;
      try {
        process.kill(lc.serverPid, 'SIGCONT');
        process.kill(lc.serverPid, signal);
      } catch {
        // already gone
      }
      await Promise.race([server.done, sleep(12_000)]);
      lc.server = undefined;
      lc.serverPid = undefined;
    },
    destroy,
  };

  try {
    await run(['ip', 'link', 'add', bridge, 'type', 'bridge']);
    await run(['ip', 'link', 'set', bridge, 'up']);
    for (const [name, nicsSpec] of [
      ['lc1', options.lc1Nics],
      ['lc2', options.lc2Nics],
    ] as const) {
      const ns = await addNs(name);
      const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `sw${tag}${name}-`));
      created.dirs.push(stateDir);
      const dataDir = options.dataDirs?.[name] ?? stateDir;
      const lc: FixtureLc = { name: `${name}-${tag}`, ns, nics: {}, dataDir, stateDir };
      for (const [nic, addresses] of Object.entries(nicsSpec))
        lc.nics[nic] = await addNic(
          ns,
          nic,
          addresses.map((a) => a.replace('NET', net)),
        );
      lcs.push(lc);
    }
    topology.lc1 = lcs[0]!;
    topology.lc2 = lcs[1]!;
    topology.clientNs = await addNs('cl');
    await addNic(topology.clientNs, 'eth0', [`${net}.100/24`]);
    if (options.servers ?? true) for (const lc of lcs) await topology.startServer(lc);
  } catch (error) {
    await destroy();
    throw error;
  }
  return topology;
}
