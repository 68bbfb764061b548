/**
 * The orchestrator's logic with fake LCs: an in-memory model of addresses, steering tables and ARP
 * settings that the network commands act on, so order, undo and recovery can be checked exactly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ExecResult } from '../../../src/core/index.ts';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { openStore, withoutWaitingForDisk } from '../../../src/store/index.ts';
import {
  SwitchJournal,
  recoverSwitches,
  resolvePlan,
  runSwitch,
  steerRuleset,
  stepRecords,
  switchSchema,
  type HealthReport,
  type ServiceSignal,
  type SwitchPlanInput,
  type SwitchSide,
} from '../../../src/switch/index.ts';

interface FakeLc {
  side: SwitchSide;
  nics: Map<string, { mac: string; addresses: string[] }>;
  steer: string | undefined;
  /** Permanent neighbour entries (address → MAC). */
  neighbours: Map<string, string>;
  signals: ServiceSignal[];
  sysctl: Map<string, string>;
  healthy: boolean;
}

const ok = (argv: readonly string[], stdout = '', exitCode = 0): ExecResult => ({
  argv,
  exitCode,
  signal: null,
  stdout,
  stderr: '',
  durationMs: 0,
});

function fakeLc(
  name: string,
  nics: Record<string, { mac: string; addresses: string[] }>,
  log: string[],
): FakeLc {
  const lc: FakeLc = {
    nics: new Map(Object.entries(nics)),
    steer: undefined,
    neighbours: new Map(),
    signals: [],
    sysctl: new Map(),
    healthy: true,
    side: undefined as unknown as SwitchSide,
  };
  lc.nics.set('lo', { mac: '00:00:00:00:00:00', addresses: ['127.0.0.1/8'] });
  lc.side = {
    name,
    async signalService(signal) {
      lc.signals.push(signal);
      log.push(`${name} signal ${signal}`);
    },
    async netExec(argv, options) {
      const [cmd, ...rest] = argv;
      const okCodes = options?.okCodes ?? [0];
      const fail = (code: number): ExecResult => {
        if (okCodes.includes(code)) return ok(argv, '', code);
        throw new Error(`${argv.join(' ')} failed`);
      };
      if (cmd === 'ip' && rest.join(' ') === '-j link show') {
        return ok(
          argv,
          JSON.stringify(
            [...lc.nics].map(([dev, n]) => ({
              ifname: dev,
              address: n.mac,
              link_type: dev === 'lo' ? 'loopback' : 'ether',
            })),
          ),
        );
      }
      if (cmd === 'ip' && rest[0] === '-j') {
        const dev = rest[rest.length - 1]!;
        const nic = lc.nics.get(dev);
        if (!nic) return fail(1);
        const [ip, prefix] = [(a: string) => a.split('/')[0], (a: string) => Number(a.split('/')[1])];
        return ok(
          argv,
          JSON.stringify([
            {
              address: nic.mac,
              addr_info: nic.addresses.map((a) => ({ local: ip(a), prefixlen: prefix(a) })),
            },
          ]),
        );
      }
      if (cmd === 'ip' && rest[0] === 'link') return lc.nics.has(rest[rest.length - 1]!) ? ok(argv) : fail(1);
      if (cmd === 'ip' && rest[0] === 'addr') {
        const [, op, cidr, , dev] = rest;
        const nic = lc.nics.get(dev!)!;
        log.push(`${name} addr ${op} ${cidr} ${dev}`);
        if (op === 'replace' && !nic.addresses.includes(cidr!)) nic.addresses.push(cidr!);
        if (op === 'del') nic.addresses = nic.addresses.filter((a) => a !== cidr);
        return ok(argv);
      }
      if (cmd === 'ip' && rest[0] === 'neigh') {
        // The steering table's next hop: `replace ADDR lladdr MAC dev DEV nud permanent`, or `flush to ADDR …`.
        if (rest[1] === 'replace') {
          lc.neighbours.set(rest[2]!, rest[4]!);
          log.push(`${name} neigh ${rest[2]} ${rest[4]}`);
        } else lc.neighbours.delete(rest[3]!);
        return ok(argv);
      }
      if (cmd === 'sysctl') {
        if (rest[0] === '-n') return ok(argv, lc.sysctl.get(rest[1]!) ?? '0');
        const [key, value] = rest[rest.length - 1]!.split('=');
        lc.sysctl.set(key!, value!);
        return ok(argv);
      }
      if (cmd === 'nft') {
        if (rest[0] === '-f') {
          lc.steer = /(new-flows|fwd)/.test(String(options?.input)) ? String(options?.input) : undefined;
          log.push(
            `${name} steer ${/flush chain/.test(lc.steer ?? '') ? 'own-flows' : /@flows accept/.test(lc.steer ?? '') ? 'old-flows' : /add @flows/.test(lc.steer ?? '') ? 'new-flows' : 'all'}`,
          );
        } else {
          if (lc.steer) log.push(`${name} steer removed`);
          lc.steer = undefined;
        }
        return ok(argv);
      }
      if (cmd === 'arping') {
        if (rest.includes('-D')) return ok(argv, '', 0);
        log.push(`${name} announce ${rest[rest.length - 1]}`);
        return ok(argv);
      }
      if (cmd === 'ss') return ok(argv, '');
      if (cmd === 'curl') return ok(argv, lc.healthy ? '200' : '503');
      throw new Error(`unexpected ${argv.join(' ')}`);
    },
  };
  return lc;
}

function setUp(method: SwitchPlanInput['method']) {
  const log: string[] = [];
  const lc1 = fakeLc('lc1', { eth0: { mac: '02:00:00:00:00:01', addresses: ['198.18.0.10/24'] } }, log);
  const lc2 = fakeLc('lc2', { eth0: { mac: '02:00:00:00:00:02', addresses: ['198.18.0.12/24'] } }, log);
  const plan: SwitchPlanInput = {
    method,
    service: { address: '198.18.0.10/24', port: 80 },
    from: { lc: 'lc1', nic: 'eth0', mac: '02:00:00:00:00:01', newAddress: '198.18.0.11/24' },
    to: { lc: 'lc2', nic: 'eth0', mac: '02:00:00:00:00:02' },
    tailMs: 0,
    drainTimeoutMs: 100,
  };
  const db = openStore(':memory:', [switchSchema]);
  const moveNic = async (): Promise<string> => {
    throw new Error('not used');
  };
  return { log, lc1, lc2, plan, db, deps: { db, from: lc1.side, to: lc2.side, moveNic } };
}

const holds = (lc: FakeLc, address: string): string[] =>
  [...lc.nics].filter(([, n]) => n.addresses.some((a) => a.startsWith(`${address}/`))).map(([dev]) => dev);

test('instant: LC2 passes old flows before it takes the address; LC1 keeps it on lo until the drain is over', async () => {
  const { log, lc1, lc2, plan, deps } = setUp('instant');
  const result = await runSwitch(plan, deps);
  assert.equal(result.outcome, 'switched');
  const order = (entry: string): number => log.indexOf(entry);
  assert.ok(order('lc2 steer old-flows') < order('lc2 addr replace 198.18.0.10/24 eth0'));
  assert.ok(
    order('lc2 neigh 169.254.117.115 02:00:00:00:00:01') >= 0 &&
      order('lc2 neigh 169.254.117.115 02:00:00:00:00:01') < order('lc2 steer old-flows'),
    "the steering table's next hop is LC1's MAC before the table passes anything on",
  );
  assert.ok(
    order('lc1 addr replace 198.18.0.10/32 lo') < order('lc1 addr del 198.18.0.10/24 eth0'),
    'the address never leaves LC1 while it has connections',
  );
  assert.ok(order('lc1 signal drain') < order('lc2 steer removed'));
  assert.deepEqual(holds(lc2, '198.18.0.10'), ['eth0']);
  assert.deepEqual(holds(lc1, '198.18.0.10'), []);
  assert.deepEqual(lc1.nics.get('eth0')?.addresses, ['198.18.0.11/24']);
  assert.equal(lc1.sysctl.get('net.ipv4.conf.all.arp_ignore'), '0', 'ARP settings restored');
  assert.deepEqual([...lc2.neighbours], [], 'the next hop goes with the steering table');
});

test('each step reports the switch id; each health check its LC, phase and outcome', async () => {
  const { plan, deps, db } = setUp('swap-address');
  const steps: [string, string][] = [];
  const health: HealthReport[] = [];
  const result = await runSwitch(plan, {
    ...deps,
    afterStep: (step, switchId) => void steps.push([step, switchId]),
    onHealth: (report) => health.push(report),
  });
  const [record] = new SwitchJournal(db).list();
  assert.deepEqual(
    steps,
    record?.steps.map((s) => [s.name, result.id]),
  );
  assert.deepEqual(
    health.map((h) => [h.phase, h.lc, h.ok, h.check]),
    [
      ['before', 'lc2', true, 'http'],
      ['after', 'lc2', true, 'http'],
    ],
  );
});

test('a failed health check after the switch reverses every step, in reverse order', async () => {
  const { log, lc1, lc2, plan, deps, db } = setUp('swap-address');
  const health: HealthReport[] = [];
  const failing = {
    ...deps,
    afterStep: (step: string) => {
      if (step === 'lc2-takes-address') lc2.healthy = false;
    },
    onHealth: (report: HealthReport) => health.push(report),
  };
  await assert.rejects(
    runSwitch(plan, failing),
    (e) => isUnderstudyError(e, 'SWITCH_REVERSED') && /lc2/.test(e.message),
  );
  assert.deepEqual(holds(lc1, '198.18.0.10'), ['eth0']);
  assert.deepEqual(holds(lc2, '198.18.0.10'), []);
  assert.equal(lc1.steer, undefined);
  assert.deepEqual(lc1.signals, ['drain', 'undrain']);
  assert.ok(
    log.indexOf('lc2 addr del 198.18.0.10/24 eth0') < log.indexOf('lc1 addr replace 198.18.0.10/24 eth0'),
  );
  assert.deepEqual(
    health.map((h) => [h.phase, h.ok]),
    [
      ['before', true],
      ['after', false],
    ],
  );
  const [record] = new SwitchJournal(db).list();
  assert.equal(record?.state, 'reversed');
  assert.ok(
    record?.steps.every(
      (s) => s.state === 'undone' || s.name === 'health-after' || s.name === 'lc1-announce-new',
    ),
    JSON.stringify(record?.steps),
  );
});

test('instant, reversed: LC2 passes new flows to LC1 and finishes its own connections before it lets the address go', async () => {
  const { log, lc1, lc2, plan, deps } = setUp('instant');
  const failing = {
    ...deps,
    afterStep: (step: string) => {
      if (step === 'lc2-takes-address') lc2.healthy = false;
    },
  };
  await assert.rejects(runSwitch(plan, failing), (e) => isUnderstudyError(e, 'SWITCH_REVERSED'));
  const order = (entry: string): number => log.indexOf(entry);
  assert.ok(order('lc2 steer own-flows') > order('lc2 steer old-flows'));
  assert.ok(order('lc2 steer own-flows') < order('lc2 signal drain'), 'new connections go to LC1 first');
  assert.ok(
    order('lc2 signal drain') < order('lc2 addr del 198.18.0.10/24 eth0'),
    'LC2 finishes its connections while it holds the address',
  );
  assert.ok(
    order('lc1 addr del 198.18.0.10/32 lo') > order('lc2 addr del 198.18.0.10/24 eth0'),
    'LC1 holds the address on lo while LC2 passes new connections to it',
  );
  assert.deepEqual(lc2.signals, ['drain', 'undrain']);
  assert.deepEqual(holds(lc1, '198.18.0.10'), ['eth0']);
  assert.deepEqual(holds(lc2, '198.18.0.10'), []);
  assert.equal(lc2.steer, undefined);
});

test('preflight errors change nothing', async () => {
  const { log, lc2, plan, deps, db } = setUp('swap-address');
  lc2.healthy = false;
  await assert.rejects(runSwitch(plan, deps), (e) => isUnderstudyError(e, 'SWITCH_STANDBY_UNHEALTHY'));
  await assert.rejects(runSwitch({ ...plan, from: { ...plan.from, mac: '02:00:00:00:00:99' } }, deps), (e) =>
    isUnderstudyError(e, 'SWITCH_PLAN_INVALID'),
  );
  await assert.rejects(runSwitch({ ...plan, service: { address: '198.18.0.50/24', port: 80 } }, deps), (e) =>
    isUnderstudyError(e, 'SWITCH_ADDRESS_NOT_HELD'),
  );
  assert.deepEqual(log, []);
  assert.deepEqual(new SwitchJournal(db).list(), []);
});

test('recovery reverses a switch that stopped before LC2 could accept connections and finishes one past that point', async () => {
  for (const [crashAt, expected] of [
    ['lc1-private-address', 'reversed'],
    ['lc2-takes-address', 'switched'],
    ['health-after', 'switched'],
  ] as const) {
    const { lc1, lc2, plan, deps, db } = setUp('instant');
    void runSwitch(plan, {
      ...deps,
      afterStep: (step) => (step === crashAt ? new Promise<void>(() => undefined) : undefined),
    });
    await new Promise((r) => setTimeout(r, 300));
    const { recovered, errors } = await recoverSwitches({
      db,
      bind: () => ({ from: lc1.side, to: lc2.side, moveNic: deps.moveNic }),
    });
    assert.deepEqual(errors, []);
    assert.deepEqual(
      recovered.map((r) => r.outcome),
      [expected],
    );
    const owner = expected === 'switched' ? lc2 : lc1;
    const other = expected === 'switched' ? lc1 : lc2;
    assert.equal(holds(owner, '198.18.0.10').length, 1, crashAt);
    assert.deepEqual(holds(other, '198.18.0.10'), [], crashAt);
    assert.equal(lc2.steer, undefined);
    assert.deepEqual(new SwitchJournal(db).unfinished(), []);
  }
});

test('plans are validated once, with defaults', () => {
  const { plan } = setUp('instant');
  assert.throws(
    () => resolvePlan({ ...plan, method: 'teleport' as never }),
    (e) => isUnderstudyError(e, 'SWITCH_METHOD_UNKNOWN'),
  );
  assert.throws(
    () => resolvePlan({ ...plan, from: { ...plan.from, newAddress: '198.18.0.10/24' } }),
    (e) => isUnderstudyError(e, 'SWITCH_PLAN_INVALID'),
  );
  assert.throws(
    () => resolvePlan({ ...plan, to: { ...plan.to, lc: 'lc1' } }),
    (e) => isUnderstudyError(e, 'SWITCH_PLAN_INVALID'),
  );
  const resolved = resolvePlan({
    ...plan,
    method: 'move-nic',
    from: { lc: 'lc1', nic: 'eth0', mac: '02:00:00:00:00:01' },
  });
  assert.equal(resolved.health.kind, 'http');
  assert.equal(resolved.stateful, false);
});

test('LC1 keeps an address it holds instead of taking a new one; LC2 lets go of the spare an earlier switch gave it', async () => {
  const { lc1, lc2, plan, deps, db } = setUp('instant');
  await assert.rejects(
    runSwitch({ ...plan, from: { ...plan.from, newAddress: undefined } }, deps),
    (e) => isUnderstudyError(e, 'SWITCH_PLAN_INVALID') && /needs a new address for lc1/.test(e.message),
  );
  await runSwitch(plan, deps); // lc1 gets 198.18.0.11 as a spare
  assert.deepEqual(lc1.nics.get('eth0')?.addresses, ['198.18.0.11/24']);
  const back = await runSwitch(
    {
      ...plan,
      from: { lc: 'lc2', nic: 'eth0', mac: '02:00:00:00:00:02', newAddress: '198.18.0.13/24' },
      to: { lc: 'lc1', nic: 'eth0', mac: '02:00:00:00:00:01' },
    },
    { ...deps, from: lc2.side, to: lc1.side },
  );
  assert.equal(back.outcome, 'switched');
  assert.deepEqual(
    lc2.nics.get('eth0')?.addresses,
    ['198.18.0.12/24'],
    'lc2 kept its own address, no new one',
  );
  assert.deepEqual(lc1.nics.get('eth0')?.addresses, ['198.18.0.10/24'], 'lc1 let its spare go');
  const [last] = new SwitchJournal(db).list(1);
  assert.deepEqual(last?.plan.to.spares, ['198.18.0.11/24']);
});

test('move-nic: the NICs are exchanged, each LC keeps one NIC and its own addresses', async () => {
  const { lc1, lc2, plan, db } = setUp('move-nic');
  const lcs = { lc1, lc2 };
  const moveNic = async (o: {
    from: SwitchSide;
    to: SwitchSide;
    nic: string;
    addresses: readonly string[];
  }): Promise<string> => {
    const src = lcs[o.from.name as 'lc1'];
    const dst = lcs[o.to.name as 'lc1'];
    const nic = src.nics.get(o.nic)!;
    src.nics.delete(o.nic);
    let name = 'eth0';
    for (let i = 0; dst.nics.has(name); i++) name = `eth${i}`;
    dst.nics.set(name, { mac: nic.mac, addresses: [...o.addresses] });
    return name;
  };
  const result = await runSwitch(plan, { db, from: lc1.side, to: lc2.side, moveNic });
  assert.equal(result.outcome, 'switched');
  const nicsOf = (lc: FakeLc) => [...lc.nics].filter(([dev]) => dev !== 'lo');
  assert.deepEqual(nicsOf(lc2), [
    ['eth1', { mac: '02:00:00:00:00:01', addresses: ['198.18.0.10/24', '198.18.0.12/24'] }],
  ]);
  assert.deepEqual(nicsOf(lc1), [['eth0', { mac: '02:00:00:00:00:02', addresses: ['198.18.0.11/24'] }]]);
});

test('the steering table of LC2 during instant never drops a packet of a flow it does not know', () => {
  const rules = steerRuleset({
    mode: 'old-flows',
    dev: 'eth0',
    address: '198.18.0.10/24',
    port: 80,
    peerMac: '02:00:00:00:00:01',
  });
  assert.match(rules, /tcp flags & \(syn \| ack\) == syn add @flows \{ ip saddr \. tcp sport \} accept/);
  assert.match(
    rules,
    /ip daddr 198\.18\.0\.10 tcp dport 80 counter fwd ip to 169\.254\.117\.115 device "eth0"\n/,
  );
  assert.doesNotMatch(rules, /drop|reject/);
  const back = steerRuleset({
    mode: 'own-flows',
    dev: 'eth0',
    address: '198.18.0.10/24',
    port: 80,
    peerMac: '02:00:00:00:00:01',
  });
  assert.doesNotMatch(back, /delete table/, 'the flows LC2 saw start are kept');
  assert.match(
    back,
    /flush chain netdev understudy_switch ingress\n[^]*tcp flags & \(syn \| ack\) == syn counter fwd [^\n]*\n[^\n]*@flows accept\n[^\n]*counter fwd /,
  );
  assert.doesNotMatch(back, /drop|reject/);
});

test('serviceSide signals the service through its pid file with a fixed script', async () => {
  const { serviceSide, signalScript } = await import('../../../src/switch/index.ts');
  const calls: (readonly string[])[] = [];
  const side = serviceSide({
    name: 'lc1',
    netExec: async (argv) => ok(argv),
    exec: async (argv) => {
      calls.push(argv);
      return ok(argv);
    },
    servicePidFile: '/run/demo.pid',
  });
  await side.signalService('drain');
  await side.signalService('pause');
  assert.deepEqual(
    calls.map((a) => a.slice(-2)),
    [
      ['USR1', '/run/demo.pid'],
      ['STOP', '/run/demo.pid'],
    ],
  );
  assert.equal(calls[0]?.[2], signalScript);
  assert.match(
    signalScript,
    /kill -s "\$1" "\$pid"/,
    'the signal and the pid file are arguments, not spliced in',
  );
});

/** Gives a fake LC a service that speaks the cut protocol; `writes` lists the ages of its writes in flight. */
function withCut(lc: FakeLc, name: string, log: string[], service: { writes: number[] }): void {
  lc.side.cutControl = async (action, options) => {
    log.push(`${name} cut ${action}`);
    if (action === 'quiesce') service.writes = [];
    return {
      writesInFlight: service.writes.length,
      oldestWriteMs: Math.max(0, ...service.writes),
      quiesced: action === 'quiesce',
      held: action === 'hold',
      ...(action === 'quiesce' ? { quiet: true, waitedMs: 3 } : {}),
      ...(action === 'release' ? { reloadMs: 2 } : {}),
      ...(options.port === 80 ? {} : { unexpectedPort: options.port }),
    };
  };
}

test('stateful instant, cut by writes: hold, address, quiesce, sync, release, then LC1 finishes', async () => {
  const { log, lc1, lc2, plan, deps } = setUp('instant');
  withCut(lc1, 'lc1', log, { writes: [3] });
  withCut(lc2, 'lc2', log, { writes: [] });
  const phases = {
    snapshotMs: 4,
    diffMs: 5,
    copyMs: 6,
    verifyMs: 1,
    bytes: 4096,
    files: 2,
    conflicts: 1,
    conflictPaths: ['lc2/system:var/lib/dpkg/status'],
    disks: ['lc1/app → lc2/app: 2 paths in-process, 9 ms'],
  };
  const notes: string[] = [];
  const result = await runSwitch(
    { ...plan, stateful: true },
    {
      ...deps,
      finalSync: async () => {
        log.push('sync');
        return phases;
      },
      onNote: (message) => notes.push(message),
    },
  );
  const at = (entry: string): number => {
    const i = log.indexOf(entry);
    assert.ok(i >= 0, `${entry} in ${JSON.stringify(log)}`);
    return i;
  };
  assert.ok(
    at('lc1 cut writes') < at('lc2 steer old-flows'),
    'the writes are checked before anything changes',
  );
  assert.ok(at('lc2 cut hold') < at('lc2 addr replace 198.18.0.10/24 eth0'));
  assert.ok(at('lc2 addr replace 198.18.0.10/24 eth0') < at('lc1 cut quiesce'));
  assert.ok(at('lc1 cut quiesce') < at('sync'));
  assert.ok(at('sync') < at('lc2 cut release'));
  assert.ok(at('lc2 cut release') < at('lc1 signal drain'), 'LC1 finishes its connections after LC2 serves');
  assert.ok(at('lc1 signal drain') < at('lc2 steer removed'));
  assert.ok(!lc2.signals.includes('pause'), 'LC2 held by its service, not stopped');
  assert.equal(at('lc1 cut unquiesce') > at('lc2 cut release'), true, 'LC1 back to normal afterwards');
  assert.equal(result.cut, 'writes');
  assert.deepEqual(result.phases?.sync, phases);
  assert.equal(result.phases?.reloadMs, 2);
  assert.ok((result.phases?.holdMs ?? -1) >= 0);
  assert.match(notes.at(-1) ?? '', /cut by writes: hold .* final sync .*snapshot 4 ms/);
  assert.match(notes.at(-1) ?? '', /1 conflicts kept on the new LC \(lc2\/system:var\/lib\/dpkg\/status\)/);
  assert.match(notes.at(-1) ?? '', /lc1\/app → lc2\/app: 2 paths in-process/);
});

test('slow writes in flight before the cut: abort changes nothing, wait retries, proceed goes on', async () => {
  {
    const { log, lc1, lc2, plan, deps, db } = setUp('instant');
    withCut(lc1, 'lc1', log, { writes: [400] });
    withCut(lc2, 'lc2', log, { writes: [] });
    await assert.rejects(
      runSwitch(
        { ...plan, stateful: true, cut: { onSlowWrites: 'abort', maxHoldMs: 100 } },
        { ...deps, finalSync: async () => undefined },
      ),
      (e) =>
        isUnderstudyError(e, 'SWITCH_WRITES_TOO_SLOW') &&
        /1 write\(s\) in flight, the oldest for 400 ms/.test(e.message),
    );
    assert.deepEqual(log, ['lc1 cut writes'], 'nothing but the check happened');
    assert.deepEqual(new SwitchJournal(db).list(), []);
  }
  {
    const { log, lc1, lc2, plan, deps } = setUp('instant');
    const service = { writes: [400] };
    withCut(lc1, 'lc1', log, service);
    withCut(lc2, 'lc2', log, { writes: [] });
    const notes: string[] = [];
    let checks = 0;
    const original = lc1.side.cutControl!;
    lc1.side.cutControl = async (action, options) => {
      if (action === 'writes' && ++checks === 3) service.writes = [];
      return original(action, options);
    };
    const result = await runSwitch(
      { ...plan, stateful: true, cut: { onSlowWrites: 'wait', retries: 5, retryIntervalMs: 1 } },
      { ...deps, finalSync: async () => undefined, onNote: (m) => notes.push(m) },
    );
    assert.equal(result.outcome, 'switched');
    assert.equal(result.phases?.gateRetries, 2);
    assert.match(notes[0] ?? '', /waiting 1 ms for a quieter moment \(1\/5\)/);
  }
  {
    const { log, lc1, lc2, plan, deps } = setUp('instant');
    withCut(lc1, 'lc1', log, { writes: [400] });
    withCut(lc2, 'lc2', log, { writes: [] });
    await assert.rejects(
      runSwitch(
        { ...plan, stateful: true, cut: { onSlowWrites: 'wait', retries: 2, retryIntervalMs: 1 } },
        { ...deps, finalSync: async () => undefined },
      ),
      (e) => isUnderstudyError(e, 'SWITCH_WRITES_TOO_SLOW') && /after 2 waits/.test(e.message),
    );
    const proceed = setUp('instant');
    withCut(proceed.lc1, 'lc1', proceed.log, { writes: [400] });
    withCut(proceed.lc2, 'lc2', proceed.log, { writes: [] });
    const result = await runSwitch(
      { ...proceed.plan, stateful: true, cut: { onSlowWrites: 'proceed' } },
      { ...proceed.deps, finalSync: async () => undefined },
    );
    assert.equal(result.outcome, 'switched');
  }
});

test('a service without the cut protocol is switched with the connection drain before the sync', async () => {
  const { log, lc2, plan, deps } = setUp('instant');
  const result = await runSwitch(
    { ...plan, stateful: true },
    {
      ...deps,
      finalSync: async () => {
        log.push('sync');
      },
    },
  );
  assert.equal(result.cut, 'connections');
  assert.ok(log.indexOf('lc1 signal drain') < log.indexOf('sync'));
  assert.ok(lc2.signals.includes('pause') && lc2.signals.includes('resume'));
});

test('inside the hold the journal waits for the disk only before the release; a crash during the sync is finished', async () => {
  const { log, lc1, lc2, plan, deps, db } = setUp('instant');
  withCut(lc1, 'lc1', log, { writes: [] });
  withCut(lc2, 'lc2', log, { writes: [] });
  // Each write of a step's state, with the connection's synchronous setting at that moment
  // (2 = FULL: the commit waits for the disk; 1 = NORMAL: it survives the process, not the host).
  const writes: { seq: number; state: string; sync: number }[] = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const statement = prepare(sql);
    if (!sql.startsWith('UPDATE switch_steps SET state')) return statement;
    const run = statement.run.bind(statement);
    statement.run = ((...args: unknown[]) => {
      writes.push({
        seq: args[4] as number,
        state: args[0] as string,
        sync: db.pragma('synchronous', { simple: true }) as number,
      });
      return run(...args);
    }) as typeof statement.run;
    return statement;
  }) as typeof db.prepare;
  let syncs = 0;
  const stuck = new Promise<void>(() => undefined);
  void runSwitch(
    { ...plan, stateful: true },
    {
      ...deps,
      finalSync: async () => {
        syncs += 1;
        log.push('sync');
      },
      // The manager dies once the final sync is journalled done, before the release.
      afterStep: (step) => (step === 'final-sync' ? stuck : undefined),
    },
  );
  await new Promise((r) => setTimeout(r, 300));
  const record = new SwitchJournal(db).list(1)[0]!;
  const name = (seq: number): string => record.steps.find((s) => s.seq === seq)?.name ?? '?';
  const syncOf = (step: string): number[] =>
    writes.filter((w) => name(w.seq) === step && w.state === 'done').map((w) => w.sync);
  assert.deepEqual(syncOf('hold'), [2], 'before LC2 is reachable: on disk');
  assert.deepEqual(syncOf('lc2-takes-address'), [1], 'inside the hold: not waited for');
  assert.deepEqual(syncOf('quiesce'), [1]);
  assert.deepEqual(syncOf('final-sync'), [2], 'before the release: on disk, with what came before');
  assert.equal(db.pragma('synchronous', { simple: true }), 2, 'the setting is restored');
  assert.equal(
    record.steps.find((s) => s.name === 'release-hold')?.state,
    'running',
    'the release is journalled started with the end of the sync',
  );
  assert.ok(!log.includes('lc2 cut release'), 'LC2 was not released');

  // The recovery finishes the switch: the sync is journalled done, so it is not run again.
  const { recovered, errors } = await recoverSwitches({
    db,
    bind: () => ({
      from: lc1.side,
      to: lc2.side,
      moveNic: deps.moveNic,
      finalSync: async () => {
        syncs += 1;
      },
    }),
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(
    recovered.map((r) => r.outcome),
    ['switched'],
  );
  assert.equal(syncs, 1, 'the sync journalled done is not repeated over what LC2 served');
  assert.ok(log.includes('lc2 cut release'));
  assert.equal(holds(lc2, '198.18.0.10').length, 1);
});

test("inside the hold one write waits for the disk: the journal's before the release, after the final sync's own record (written without waiting)", async () => {
  const { log, lc1, lc2, plan, deps, db } = setUp('instant');
  withCut(lc1, 'lc1', log, { writes: [] });
  withCut(lc2, 'lc2', log, { writes: [] });
  // The final sync records its new bases in the same store without waiting for the disk, as the
  // disk store does with SyncOptions.deferDurability.
  db.exec('CREATE TABLE bases (pair TEXT PRIMARY KEY, generation INTEGER)');
  // Every write to the store from the hold to the release, with the synchronous setting at that
  // moment (2 = FULL: the commit waits for the disk; 1 = NORMAL: it does not).
  const writes: { what: string; sync: number }[] = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const statement = prepare(sql);
    if (!/^(INSERT|UPDATE|DELETE)/.test(sql)) return statement;
    const run = statement.run.bind(statement);
    statement.run = ((...args: unknown[]) => {
      const what = sql.startsWith('UPDATE switch_steps SET state')
        ? `step ${String(args[4])} ${String(args[0])}`
        : sql;
      writes.push({ what, sync: db.pragma('synchronous', { simple: true }) as number });
      return run(...args);
    }) as typeof statement.run;
    return statement;
  }) as typeof db.prepare;
  const result = await runSwitch(
    { ...plan, stateful: true },
    {
      ...deps,
      finalSync: async () => {
        withoutWaitingForDisk(db, () =>
          db
            .prepare('INSERT OR REPLACE INTO bases (pair, generation) VALUES (?, ?)')
            .run('lc1/app|lc2/app', 1),
        );
      },
    },
  );
  assert.equal(result.outcome, 'switched');
  const steps = new SwitchJournal(db).get(result.id)!.steps;
  const seq = (name: string): number => steps.find((s) => s.name === name)!.seq;
  const index = (what: string): number => writes.findIndex((w) => w.what === what);
  // LC2 holds the new requests from the moment it takes the address until the release starts.
  const reachable = index(`step ${seq('lc2-takes-address')} done`);
  const syncDone = index(`step ${seq('final-sync')} done`);
  const bases = writes.findIndex((w) => w.what.startsWith('INSERT OR REPLACE INTO bases'));
  assert.ok(reachable < bases && bases < syncDone, JSON.stringify(writes));
  // The final sync's step done (with the facts, and the release's start): one transaction.
  const held = writes.slice(reachable, syncDone + 2);
  assert.deepEqual(
    held.filter((w) => w.sync === 2).map((w) => w.what),
    ['UPDATE switches SET facts = ? WHERE id = ?', `step ${seq('final-sync')} done`, held.at(-1)?.what],
    'one wait for the disk inside the hold, after the sync wrote its record',
  );
  assert.match(held.at(-1)?.what ?? '', /^INSERT OR REPLACE INTO switch_steps/);
  assert.equal(writes[bases]?.sync, 1, "the sync's record does not wait");
  assert.equal(db.pragma('synchronous', { simple: true }), 2, 'the setting is restored');
});

test('a crash inside the hold before the sync is journalled done: the recovery quiesces and syncs again', async () => {
  const { log, lc1, lc2, plan, deps, db } = setUp('instant');
  withCut(lc1, 'lc1', log, { writes: [] });
  withCut(lc2, 'lc2', log, { writes: [] });
  void runSwitch(
    { ...plan, stateful: true },
    {
      ...deps,
      finalSync: async () => {
        log.push('sync');
      },
      afterStep: (step) => (step === 'quiesce' ? new Promise<void>(() => undefined) : undefined),
    },
  );
  await new Promise((r) => setTimeout(r, 300));
  const steps = new SwitchJournal(db).list(1)[0]!.steps;
  assert.equal(steps.find((s) => s.name === 'quiesce')?.state, 'done');
  assert.equal(steps.find((s) => s.name === 'final-sync')?.state, 'running');
  const { recovered } = await recoverSwitches({
    db,
    bind: () => ({
      from: lc1.side,
      to: lc2.side,
      moveNic: deps.moveNic,
      finalSync: async () => {
        log.push('sync again');
      },
    }),
  });
  assert.deepEqual(
    recovered.map((r) => r.outcome),
    ['switched'],
  );
  assert.ok(log.indexOf('sync again') < log.lastIndexOf('lc2 cut release'), 'synced again, then released');
});

test('step records inside the hold are written once it is released, in order', () => {
  const written: string[] = [];
  const records = stepRecords();
  for (const step of ['lc1-private-address', 'hold', 'lc2-takes-address', 'quiesce', 'final-sync']) {
    records.add(step, () => written.push(step));
  }
  assert.deepEqual(written, ['lc1-private-address']);
  records.add('release-hold', () => written.push('release-hold'));
  records.add('drain', () => written.push('drain'));
  assert.deepEqual(written, [
    'lc1-private-address',
    'hold',
    'lc2-takes-address',
    'quiesce',
    'final-sync',
    'release-hold',
    'drain',
  ]);
  records.add('hold', () => written.push('hold again'));
  records.flush();
  assert.equal(written.at(-1), 'hold again', 'flush writes what is kept (a switch that failed)');
});
