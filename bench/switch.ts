/**
 * Switch benchmark: for each method, N consecutive switches (alternating LC1→LC2 and back) under a
 * steady HTTP/1.1 load from a client namespace, side by side with (a) a naive address move,
 * (b) keepalived moving the address by VRRP with its default settings, (c) stop, patch and restart
 * in place. Prints a Markdown table.
 *
 *   node --import tsx bench/switch.ts [--switches 20] [--rate 200] [--only instant,keepalived]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exec, sleep, spawnProcess, type SpawnedProcess } from '../src/core/index.ts';
import { latencyStats, type LoadResult } from '../src/loadgen/index.ts';
import { openStore } from '../src/store/index.ts';
import { runSwitch, switchSchema, type SwitchMethod, type SwitchPlanInput } from '../src/switch/index.ts';
import { clientCounters, startClientLoad } from '../test/e2e/switch/load.ts';
import { createTopology, type Topology } from '../test/e2e/switch/topology.ts';

type Contender = SwitchMethod | `${SwitchMethod}+stateful` | 'naive' | 'keepalived' | 'restart';
const contenders: Contender[] = [
  'move-nic',
  'swap-address',
  'instant',
  'swap-address+stateful',
  'instant+stateful',
  'naive',
  'keepalived',
  'restart',
];

const { values } = parseArgs({
  options: {
    switches: { type: 'string', default: '20' },
    rate: { type: 'string', default: '200' },
    only: { type: 'string' },
  },
});
const switches = Number(values.switches);
const rate = Number(values.rate);
const only = values.only ? (values.only.split(',') as Contender[]) : contenders;

interface Row {
  name: string;
  switches: number;
  requests: number;
  failed: number;
  resets: number;
  synRetrans: number;
  steadyP99: number;
  windowP99: number;
  windowMax: number;
  delayed1s: number;
  switchMs: number;
  /** p99 of how late the load generator itself dispatched requests (machine load shows here). */
  lagP99: number;
  /** Switches whose drain timed out with connections still on the old LC (understudy only). */
  drainTimeouts?: number;
  /** Stateful: median time new connections waited in LC2's backlog for the final sync. */
  holdMs?: number;
}

const ip = (argv: string[]): Promise<unknown> => exec(['ip', ...argv]);

function nics(c: Contender): { lc1: Record<string, string[]>; lc2: Record<string, string[]> } {
  if (c === 'keepalived') return { lc1: { eth0: ['NET.11/24'] }, lc2: { eth2: ['NET.12/24'] } };
  return { lc1: { eth0: ['NET.10/24'] }, lc2: { eth2: ['NET.12/24'] } };
}

/**
 * One switch of the contender, in direction `forward` (LC1→LC2) or back; resolves when it is over,
 * with how long it touched traffic when that is less than the whole call (understudy's preflight
 * checks change nothing and are left out of the window).
 */
type SwitchOnce = (forward: boolean) => Promise<number | void>;

/** The final sync of a stateful switch, stood in for by an rsync of a 4 MiB application directory. */
function fakeAppDisk(dir: string): () => Promise<void> {
  const source = path.join(dir, 'app-src');
  fs.mkdirSync(source, { recursive: true });
  for (let i = 0; i < 64; i++) fs.writeFileSync(path.join(source, `f${i}`), Buffer.alloc(65536, i));
  return async () => {
    fs.appendFileSync(path.join(source, 'f0'), 'x');
    await exec(['rsync', '-a', '--inplace', `${source}/`, path.join(dir, 'app-dst')]);
  };
}

function ourSwitch(
  topo: Topology,
  method: SwitchMethod,
  holds: number[],
  finalSync?: () => Promise<void>,
  timeouts: number[] = [],
): SwitchOnce {
  const db = openStore(':memory:', [switchSchema]);
  const { lc1, lc2, net, port } = topo;
  return async (forward) => {
    const moved = method === 'move-nic';
    const plan: SwitchPlanInput = forward
      ? {
          method,
          service: { address: `${net}.10/24`, port },
          from: { lc: lc1.name, nic: 'eth0', mac: lc1.nics.eth0!.mac, newAddress: `${net}.11/24` },
          to: { lc: lc2.name, nic: 'eth2', mac: lc2.nics.eth2!.mac },
        }
      : {
          method,
          service: { address: `${net}.10/24`, port },
          // move-nic exchanged the NICs: LC2 has LC1's eth0, LC1 has LC2's eth2.
          from: moved
            ? { lc: lc2.name, nic: 'eth0', mac: lc1.nics.eth0!.mac, newAddress: `${net}.12/24` }
            : { lc: lc2.name, nic: 'eth2', mac: lc2.nics.eth2!.mac, newAddress: `${net}.12/24` },
          to: moved
            ? { lc: lc1.name, nic: 'eth2', mac: lc2.nics.eth2!.mac }
            : { lc: lc1.name, nic: 'eth0', mac: lc1.nics.eth0!.mac },
        };
    const [a, b] = forward ? [lc1, lc2] : [lc2, lc1];
    const result = await runSwitch(
      { ...plan, tailMs: 300, drainTimeoutMs: 5000, stateful: finalSync !== undefined },
      { db, from: topo.side(a), to: topo.side(b), moveNic: topo.moveNic, finalSync },
    );
    if (finalSync) holds.push(result.holdMs);
    if (result.leftOnLc1 > 0) timeouts.push(result.leftOnLc1);
    return result.durationMs;
  };
}

function naiveSwitch(topo: Topology): SwitchOnce {
  const s = `${topo.net}.10/24`;
  return async (forward) => {
    const [from, fromNic, to, toNic] = forward
      ? [topo.lc1.ns, 'eth0', topo.lc2.ns, 'eth2']
      : [topo.lc2.ns, 'eth2', topo.lc1.ns, 'eth0'];
    await ip(['-n', from, 'addr', 'del', s, 'dev', fromNic]);
    await ip(['-n', to, 'addr', 'add', s, 'dev', toNic]);
    await exec([
      'ip',
      'netns',
      'exec',
      to,
      'arping',
      '-q',
      '-U',
      '-c',
      '1',
      '-I',
      toNic,
      '-s',
      `${topo.net}.10`,
      `${topo.net}.10`,
    ]);
  };
}

function restartSwitch(topo: Topology): SwitchOnce {
  return async () => {
    await topo.stopServer(topo.lc1);
    await topo.startServer(topo.lc1);
  };
}

async function keepalivedSwitch(
  topo: Topology,
  dir: string,
): Promise<{ once: SwitchOnce; stop(): Promise<void> }> {
  const vrid = 1 + Math.floor(Math.random() * 250);
  const procs = new Map<string, SpawnedProcess>();
  const start = async (lcNs: string, nic: string, priority: number, tag: string): Promise<void> => {
    const conf = path.join(dir, `keepalived-${tag}.conf`);
    fs.writeFileSync(
      conf,
      `vrrp_instance VI_${tag} {\n  state BACKUP\n  interface ${nic}\n  virtual_router_id ${vrid}\n  priority ${priority}\n  virtual_ipaddress {\n    ${topo.net}.10/24 dev ${nic}\n  }\n}\n`,
    );
    const pid = (n: string): string => path.join(dir, `${tag}-${n}.pid`);
    procs.set(
      tag,
      spawnProcess(
        [
          'ip',
          'netns',
          'exec',
          lcNs,
          'keepalived',
          '-n',
          '-l',
          '-P',
          '-f',
          conf,
          '-p',
          pid('main'),
          '-r',
          pid('vrrp'),
          '-c',
          pid('chk'),
        ],
        { stdio: ['ignore', 'ignore', 'ignore'] },
      ),
    );
  };
  const stop = async (tag: string): Promise<void> => {
    const p = procs.get(tag);
    if (!p) return;
    p.child.kill('SIGTERM');
    await Promise.race([p.done, sleep(5000)]);
    procs.delete(tag);
  };
  const holder = async (): Promise<string> =>
    (await exec(['ip', '-n', topo.lc1.ns, '-o', 'addr'])).stdout.includes(`${topo.net}.10/`)
      ? 'lc1'
      : (await exec(['ip', '-n', topo.lc2.ns, '-o', 'addr'])).stdout.includes(`${topo.net}.10/`)
        ? 'lc2'
        : 'none';
  await start(topo.lc1.ns, 'eth0', 150, 'lc1');
  await start(topo.lc2.ns, 'eth2', 100, 'lc2');
  for (let i = 0; i < 100 && (await holder()) !== 'lc1'; i++) await sleep(100);
  return {
    // Planned failover: stop keepalived on the master (it sends priority 0); back: start it again (it preempts).
    once: async (forward) => {
      if (forward) await stop('lc1');
      else await start(topo.lc1.ns, 'eth0', 150, 'lc1');
      const want = forward ? 'lc2' : 'lc1';
      for (let i = 0; i < 200 && (await holder()) !== want; i++) await sleep(20);
    },
    stop: async () => {
      await stop('lc1');
      await stop('lc2');
    },
  };
}

function summarise(
  name: string,
  run: LoadResult,
  windows: { t0: number; t1: number }[],
  counters: { resets: number; synRetrans: number },
): Row {
  const inWindow = (t: number): boolean => windows.some((w) => t >= w.t0 && t <= w.t1);
  const delay = (r: LoadResult['records'][number]): number =>
    r.kind === 'upload' ? Math.max(0, r.latencyMs - run.options.uploadDurationMs) : r.latencyMs;
  const ok = run.records.filter((r) => r.outcome === 'ok');
  const win = latencyStats(ok.filter((r) => inWindow(r.scheduledAt)).map(delay));
  const steady = latencyStats(ok.filter((r) => !inWindow(r.scheduledAt)).map(delay));
  const durations = windows.map((w) => w.t1 - w.t0).sort((a, b) => a - b);
  return {
    name,
    switches: windows.length,
    requests: run.records.length,
    failed: run.summary.failed,
    resets: counters.resets,
    synRetrans: counters.synRetrans,
    steadyP99: steady.p99,
    windowP99: win.p99,
    windowMax: win.max,
    delayed1s: run.records.filter((r) => delay(r) >= 1000).length,
    switchMs: durations[Math.floor(durations.length / 2)] ?? 0,
    lagP99: run.summary.lagP99Ms,
  };
}

async function bench(c: Contender): Promise<Row> {
  const n = nics(c);
  const topo = await createTopology({ lc1Nics: n.lc1, lc2Nics: n.lc2 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `swbench-${topo.tag}-`));
  let cleanup = async (): Promise<void> => undefined;
  try {
    let once: SwitchOnce;
    const holds: number[] = [];
    const timeouts: number[] = [];
    if (c === 'naive') once = naiveSwitch(topo);
    else if (c === 'restart') once = restartSwitch(topo);
    else if (c === 'keepalived') ({ once, stop: cleanup } = await keepalivedSwitch(topo, dir));
    else if (c.endsWith('+stateful'))
      once = ourSwitch(topo, c.replace('+stateful', '') as SwitchMethod, holds, fakeAppDisk(dir), timeouts);
    else once = ourSwitch(topo, c as SwitchMethod, holds, undefined, timeouts);
    const before = await clientCounters(topo.clientNs);
    const load = startClientLoad(topo.clientNs, {
      url: `http://${topo.net}.10:${topo.port}/`,
      rate,
      durationMs: 3_600_000,
      maxRequests: 10_000_000,
      mix: { keepalive: 0.7, newconn: 0.25, upload: 0.05 },
      uploadDurationMs: 1000,
      poolSize: 16,
      timeoutMs: 10_000,
    });
    await sleep(2000);
    const windows: { t0: number; t1: number }[] = [];
    for (let i = 0; i < switches; i++) {
      const t0 = Date.now();
      let trafficMs: number | void = undefined;
      try {
        trafficMs = await once(i % 2 === 0);
      } catch (error) {
        process.stderr.write(`${c} switch ${i} failed: ${String(error)}\n`);
      }
      const t1 = Date.now();
      windows.push({ t0: typeof trafficMs === 'number' ? t1 - trafficMs : t0, t1 });
      await sleep(1000);
    }
    load.stop();
    const run = await load;
    const after = await clientCounters(topo.clientNs);
    const row = summarise(c, run, windows, {
      resets: after.resets - before.resets,
      synRetrans: after.synRetrans - before.synRetrans,
    });
    holds.sort((x, y) => x - y);
    const ours = c !== 'naive' && c !== 'keepalived' && c !== 'restart';
    return {
      ...row,
      ...(holds.length > 0 ? { holdMs: holds[Math.floor(holds.length / 2)] } : {}),
      ...(ours ? { drainTimeouts: timeouts.length } : {}),
    };
  } finally {
    await cleanup();
    await topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const labels: Record<Contender, string> = {
  'move-nic': 'understudy move-nic',
  'swap-address': 'understudy swap-address',
  instant: 'understudy instant',
  'move-nic+stateful': 'understudy move-nic --stateful',
  'swap-address+stateful': 'understudy swap-address --stateful',
  'instant+stateful': 'understudy instant --stateful',
  naive: '(a) naive address move',
  keepalived: '(b) keepalived VRRP, defaults',
  restart: '(c) stop, patch, restart in place',
};

const rows: Row[] = [];
for (const c of only) {
  process.stderr.write(`benchmarking ${c}…\n`);
  rows.push({ ...(await bench(c)), name: labels[c] });
}
const f = (x: number): string => x.toFixed(1);
const header =
  '| method | switches | requests | failed | RSTs | SYN retrans | steady p99 ms | window p99 ms | window max ms | delayed >= 1 s | median switch ms | median hold ms | client lag p99 ms | drain timeouts |';
console.log(header);
console.log(
  `|${header
    .split('|')
    .slice(1, -1)
    .map(() => '---')
    .join('|')}|`,
);
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.switches} | ${r.requests} | ${r.failed} | ${r.resets} | ${r.synRetrans} | ${f(r.steadyP99)} | ${f(r.windowP99)} | ${f(r.windowMax)} | ${r.delayed1s} | ${r.switchMs} | ${r.holdMs ?? '-'} | ${f(r.lagP99)} | ${r.drainTimeouts ?? '-'} |`,
  );
}
