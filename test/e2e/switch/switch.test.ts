/**
 * The switch end to end: real namespaces on a real bridge, the demo service in each LC, real TCP load
 * from a client namespace. Each method must move the service with zero failed requests; bad input and
 * faults must leave the service on LC1; an interrupted switch must be finished or reversed on restart.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { exec, isUnderstudyError, sleep } from '../../../src/core/index.ts';
import { openStore, type Db } from '../../../src/store/index.ts';
import {
  recoverSwitches,
  runSwitch,
  switchSchema,
  type SwitchMethod,
  type SwitchPlanInput,
} from '../../../src/switch/index.ts';
import { clientCounters, startClientLoad } from './load.ts';
import { createTopology, type Topology } from './topology.ts';

async function setUp(
  t: TestContext,
  method: SwitchMethod,
): Promise<{ topo: Topology; db: Db; plan: SwitchPlanInput }> {
  // One NIC per LC: move-nic gives LC1 LC2's old NIC in exchange (with LC1's new address, .11).
  const topo = await createTopology({ lc1Nics: { eth0: ['NET.10/24'] }, lc2Nics: { eth2: ['NET.12/24'] } });
  t.after(() => topo.destroy());
  const db = openStore(':memory:', [switchSchema]);
  t.after(() => db.close());
  const plan: SwitchPlanInput = {
    method,
    service: { address: `${topo.net}.10/24`, port: topo.port },
    from: { lc: topo.lc1.name, nic: 'eth0', mac: topo.lc1.nics.eth0!.mac, newAddress: `${topo.net}.11/24` },
    to: { lc: topo.lc2.name, nic: 'eth2', mac: topo.lc2.nics.eth2!.mac },
    drainTimeoutMs: 5000,
    tailMs: 300,
  };
  return { topo, db, plan };
}

const deps = (topo: Topology, db: Db) => ({
  db,
  from: topo.side(topo.lc1),
  to: topo.side(topo.lc2),
  moveNic: topo.moveNic,
});

async function addressesIn(ns: string): Promise<string> {
  return (await exec(['ip', '-n', ns, '-4', '-o', 'addr', 'show'])).stdout;
}

/** What a client sees at the service address now: the X-Served-By of one fresh request. */
async function servedBy(topo: Topology): Promise<string> {
  const r = await exec([
    'ip',
    'netns',
    'exec',
    topo.clientNs,
    'curl',
    '-s',
    '-D',
    '-',
    '-o',
    '/dev/null',
    '--max-time',
    '3',
    `http://${topo.net}.10:${topo.port}/`,
  ]);
  return /^x-served-by:\s*(\S+)/im.exec(r.stdout)?.[1] ?? '';
}

for (const method of ['move-nic', 'swap-address', 'instant'] as const) {
  test(`${method}: moves the service under load with zero failed requests`, async (t) => {
    const { topo, db, plan } = await setUp(t, method);
    const before = await clientCounters(topo.clientNs);
    const load = startClientLoad(topo.clientNs, {
      url: `http://${topo.net}.10:${topo.port}/`,
      rate: 200,
      durationMs: 3500,
      maxRequests: 100_000,
      mix: { keepalive: 0.7, newconn: 0.25, upload: 0.05 },
      uploadDurationMs: 800,
      poolSize: 16,
    });
    await sleep(1200);
    // One method checks health by TCP connect, the others by HTTP status.
    const health =
      method === 'instant'
        ? ({ kind: 'tcp', timeoutMs: 1000, retries: 1, intervalMs: 100 } as const)
        : undefined;
    const result = await runSwitch({ ...plan, health }, deps(topo, db));
    const run = await load;
    const after = await clientCounters(topo.clientNs);

    assert.equal(result.outcome, 'switched');
    assert.equal(run.summary.failed, 0, JSON.stringify(run.summary.byErrorCode));
    assert.equal(run.summary.delayedOver1s, 0);
    assert.ok(
      (run.summary.byServedBy[topo.lc1.name] ?? 0) > 0 && (run.summary.byServedBy[topo.lc2.name] ?? 0) > 0,
      JSON.stringify(run.summary.byServedBy),
    );
    assert.equal(after.resets - before.resets, 0, 'no connection was reset');
    assert.equal(after.synRetrans - before.synRetrans, 0, 'no SYN had to be resent');
    assert.equal(await servedBy(topo), topo.lc2.name);
    assert.doesNotMatch(
      await addressesIn(topo.lc1.ns),
      new RegExp(`inet ${topo.net}\\.10/`),
      'LC1 let the service address go',
    );
    const nft = await exec(['ip', 'netns', 'exec', topo.lc2.ns, 'nft', 'list', 'tables']);
    assert.doesNotMatch(nft.stdout, /understudy_switch/, 'the forwarding was lifted');
    // Each LC ends with one NIC, LC2 with its own address and the service's, LC1 with its new one.
    const nicsIn = async (ns: string): Promise<string[]> =>
      (await addressesIn(ns))
        .split('\n')
        .filter((l) => l.trim() !== '' && !/: lo\s/.test(l))
        .map((l) => l.split(/\s+/).slice(1, 4).join(' '));
    assert.deepEqual((await nicsIn(topo.lc2.ns)).map((l) => l.replace(/^\S+ /, '')).sort(), [
      `inet ${topo.net}.10/24`,
      `inet ${topo.net}.12/24`,
    ]);
    assert.deepEqual(
      (await nicsIn(topo.lc1.ns)).map((l) => l.replace(/^\S+ /, '')),
      [`inet ${topo.net}.11/24`],
    );
    const links = async (ns: string): Promise<number> =>
      (await exec(['ip', '-n', ns, '-o', 'link', 'show'])).stdout
        .split('\n')
        .filter((l) => /^\d+: (?!lo:)/.test(l)).length;
    assert.equal(await links(topo.lc1.ns), 1, 'LC1 has one NIC');
    assert.equal(await links(topo.lc2.ns), 1, 'LC2 has one NIC');
  });
}

test('stateful: the final sync runs after LC1 finished and before LC2 serves anything', async (t) => {
  const { topo, db, plan } = await setUp(t, 'swap-address');
  let syncAt = 0;
  let lc1Connections = -1;
  const load = startClientLoad(topo.clientNs, {
    url: `http://${topo.net}.10:${topo.port}/`,
    rate: 200,
    durationMs: 3000,
    maxRequests: 100_000,
    mix: { keepalive: 0.6, newconn: 0.4 },
  });
  await sleep(1000);
  const result = await runSwitch(
    { ...plan, stateful: true },
    {
      ...deps(topo, db),
      finalSync: async () => {
        const ss = await exec([
          'ip',
          'netns',
          'exec',
          topo.lc1.ns,
          'ss',
          '-Htn',
          'state',
          'established',
          `( sport = :${topo.port} )`,
        ]);
        lc1Connections = ss.stdout.split('\n').filter(Boolean).length;
        await sleep(50);
        syncAt = Date.now();
      },
    },
  );
  const run = await load;
  assert.equal(run.summary.failed, 0);
  assert.equal(lc1Connections, 0, 'LC1 had no connection left when the sync ran');
  const servedByLc2 = run.records.filter((r) => r.servedBy === topo.lc2.name);
  assert.ok(servedByLc2.length > 0);
  for (const r of servedByLc2)
    assert.ok(r.scheduledAt + r.latencyMs >= syncAt, 'LC2 answered only after the final sync');
  assert.ok(result.holdMs > 0 && result.syncMs >= 50, JSON.stringify(result));
});

test('bad input and faults leave the service on LC1 with a clear error', async (t) => {
  const { topo, db, plan } = await setUp(t, 'swap-address');

  await assert.rejects(runSwitch({ ...plan, method: 'teleport' as SwitchMethod }, deps(topo, db)), (e) =>
    isUnderstudyError(e, 'SWITCH_METHOD_UNKNOWN'),
  );
  await assert.rejects(
    runSwitch({ ...plan, service: { ...plan.service, address: `${topo.net}.20/24` } }, deps(topo, db)),
    (e) => isUnderstudyError(e, 'SWITCH_ADDRESS_NOT_HELD') && e.message.includes(topo.lc1.name),
  );

  // Another host on the bridge answers for the address.
  await exec(['ip', '-n', topo.clientNs, 'addr', 'add', `${topo.net}.10/32`, 'dev', 'eth0']);
  await exec(['ip', 'netns', 'exec', topo.clientNs, 'sysctl', '-q', '-w', 'net.ipv4.conf.all.arp_ignore=0']);
  await assert.rejects(runSwitch(plan, deps(topo, db)), (e) =>
    isUnderstudyError(e, 'SWITCH_ADDRESS_CONFLICT'),
  );
  await exec(['ip', '-n', topo.clientNs, 'addr', 'del', `${topo.net}.10/32`, 'dev', 'eth0']);

  // The standby's service is down: no switch.
  await topo.stopServer(topo.lc2);
  await assert.rejects(runSwitch(plan, deps(topo, db)), (e) =>
    isUnderstudyError(e, 'SWITCH_STANDBY_UNHEALTHY'),
  );
  assert.equal(await servedBy(topo), topo.lc1.name);
  await topo.startServer(topo.lc2);

  // LC2 dies mid-switch: reversed, the service stays on LC1.
  for (const method of ['swap-address', 'instant', 'move-nic'] as const) {
    await assert.rejects(
      runSwitch(
        { ...plan, method },
        {
          ...deps(topo, db),
          afterStep: async (step) => {
            if (step === 'lc2-takes-address' || step === 'move-nic')
              await topo.stopServer(topo.lc2, 'SIGKILL');
          },
        },
      ),
      (e) => isUnderstudyError(e, 'SWITCH_REVERSED'),
      method,
    );
    assert.equal(await servedBy(topo), topo.lc1.name, method);
    assert.match(await addressesIn(topo.lc1.ns), new RegExp(`eth0\\s+inet ${topo.net}\\.10/24`), method);
    assert.doesNotMatch(await addressesIn(topo.lc2.ns), new RegExp(`inet ${topo.net}\\.10/`), method);
    await topo.startServer(topo.lc2);
  }
});

test('a switch interrupted by a manager crash is reversed before, and finished after, the point of no return', async (t) => {
  const { topo, db, plan } = await setUp(t, 'instant');
  const binding = { from: topo.side(topo.lc1), to: topo.side(topo.lc2), moveNic: topo.moveNic };
  const crashAt =
    (at: string) =>
    async (step: string): Promise<void> => {
      if (step === at) await new Promise<never>(() => undefined); // the manager "dies": nothing runs after this
    };

  void runSwitch(plan, { ...deps(topo, db), afterStep: crashAt('lc1-private-address') });
  await sleep(1500);
  let outcome = await recoverSwitches({ db, bind: () => binding });
  assert.deepEqual(
    outcome.recovered.map((r) => r.outcome),
    ['reversed'],
  );
  assert.equal(await servedBy(topo), topo.lc1.name);
  assert.doesNotMatch(await addressesIn(topo.lc2.ns), new RegExp(`inet ${topo.net}\\.10/`));
  assert.doesNotMatch(await addressesIn(topo.lc1.ns), new RegExp(`lo\\s+inet ${topo.net}\\.10/`));

  void runSwitch(plan, { ...deps(topo, db), afterStep: crashAt('health-after') });
  await sleep(2500);
  outcome = await recoverSwitches({ db, bind: () => binding });
  assert.deepEqual(
    outcome.recovered.map((r) => r.outcome),
    ['switched'],
  );
  assert.equal(await servedBy(topo), topo.lc2.name);
  assert.doesNotMatch(await addressesIn(topo.lc1.ns), new RegExp(`inet ${topo.net}\\.10/`));
});
