/**
 * `understudy switch` repeated as an operator does it: every method, back and forth, in every order,
 * on real LCs under load from a client on the bridge — and the switches it must refuse.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getLc } from '../../../src/inventory/index.ts';
import { startClientLoad, type ClientLoadReport } from '../../../src/demo/index.ts';
import type { SwitchMethod } from '../../../src/switch/index.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

interface Nic {
  name: string;
  addresses: string[];
}

/** The NICs an LC really has (every device but lo) and their IPv4 addresses, read in its namespace. */
async function nicsOf(f: RunFixture, lc: string): Promise<Nic[]> {
  const out = await f.t.host.driver.netExec(lc, ['ip', '-j', '-4', 'addr', 'show']);
  const links = JSON.parse(out.stdout) as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  const nics = JSON.parse((await f.t.host.driver.netExec(lc, ['ip', '-j', 'link', 'show'])).stdout) as {
    ifname: string;
  }[];
  return nics
    .filter((l) => l.ifname !== 'lo')
    .map((l) => ({
      name: l.ifname,
      addresses: (links.find((a) => a.ifname === l.ifname)?.addr_info ?? []).map(
        (a) => `${a.local}/${a.prefixlen}`,
      ),
    }));
}

async function loAddresses(f: RunFixture, lc: string): Promise<string[]> {
  const out = await f.t.host.driver.netExec(lc, ['ip', '-j', '-4', 'addr', 'show', 'dev', 'lo']);
  return ((JSON.parse(out.stdout) as { addr_info?: { local: string }[] }[])[0]?.addr_info ?? []).map(
    (a) => a.local,
  );
}

/** Each ordered pair of methods once (a de Bruijn sequence), so every method follows every other. */
const everyOrder: SwitchMethod[] = [
  'instant',
  'instant',
  'move-nic',
  'instant',
  'swap-address',
  'move-nic',
  'move-nic',
  'swap-address',
  'swap-address',
  'instant',
];

describe('understudy switch, repeated', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
    await f.t.host.driver.start(getLc(f.t.app.db, 'lc2'));
    await f.t.host.driver.waitUntilUp('lc2');
  });
  after(async () => f?.dispose());

  test(
    'issue 16 items 1 and 3: 22 switches, every method after every other, back and forth under load: 0 failed, one NIC and no extra address per LC',
    { timeout: 900_000 },
    async (t) => {
      const methods = [...everyOrder, ...everyOrder, 'move-nic', 'instant'] as SwitchMethod[];
      const own = { lc1: [] as string[], lc2: [`${f.service.replace(/\.10$/, '.11')}/24`] };
      const service = `${f.service}/24`;
      // A load that outlasts the switches (the fixture's stops by itself after 5 minutes).
      const load = await startClientLoad({
        netns: f.client.netns,
        url: `http://${f.service}/`,
        rate: 200,
        maxDurationS: 850,
      });
      let report: ClientLoadReport | undefined;
      let holder: 'lc1' | 'lc2' = 'lc1';
      try {
        for (const [i, method] of methods.entries()) {
          const from: 'lc1' | 'lc2' = holder;
          const to: 'lc1' | 'lc2' = holder === 'lc1' ? 'lc2' : 'lc1';
          const stateful = i % 4 === 3;
          const label: string = `switch ${i + 1} ${from} -> ${to} by ${method}${stateful ? ' --stateful' : ''}`;
          const args = [
            '--json',
            'switch',
            from,
            to,
            '--method',
            method,
            ...(stateful ? ['--stateful'] : []),
          ];
          const out = await f.t.cli(args, { okCodes: [0, 1] });
          assert.equal(out.exitCode, 0, `${label}: ${out.stdout}${out.stderr}`);
          const result = JSON.parse(out.stdout) as {
            outcome: string;
            durationMs: number;
            drainMs: number;
            leftOnLc1: number;
          };
          assert.equal(result.outcome, 'switched', label);
          t.diagnostic(
            `${label}: ${result.durationMs} ms (drain ${result.drainMs} ms, ${result.leftOnLc1} left), command ${Math.round(out.durationMs)} ms`,
          );
          holder = to;

          for (const lc of ['lc1', 'lc2'] as const) {
            const nics = await nicsOf(f, lc);
            assert.equal(nics.length, 1, `${label}: ${lc} has exactly one NIC: ${JSON.stringify(nics)}`);
            const recorded = getLc(f.t.app.db, lc).nics;
            assert.deepEqual(
              recorded.map((n) => n.name),
              nics.map((n) => n.name),
              `${label}: the resource table knows ${lc}'s NIC`,
            );
            const addresses = nics[0]!.addresses;
            if (lc === holder) {
              // Its own addresses and the service address; any spare address it got is released.
              assert.deepEqual(
                [...addresses].sort(),
                [...own[lc], service].sort(),
                `${label}: ${lc} serves with its own addresses only`,
              );
            } else {
              assert.ok(!addresses.includes(service), `${label}: ${lc} let the service address go`);
              const expected = own[lc].length > 0 ? own[lc] : undefined;
              if (expected) assert.deepEqual(addresses, expected, `${label}: ${lc} keeps its own address`);
              else
                assert.equal(
                  addresses.length,
                  1,
                  `${label}: ${lc} holds one address: ${addresses.join(' ')}`,
                );
            }
            assert.deepEqual(await loAddresses(f, lc), ['127.0.0.1'], `${label}: nothing left on ${lc}'s lo`);
          }
          assert.equal(
            (await f.get('/version')).servedBy,
            holder,
            `${label}: a new request reaches ${holder}`,
          );
          assert.equal(getLc(f.t.app.db, holder).role, 'active', label);
        }
      } finally {
        await load.stop().then((r) => (report = r));
      }
      t.diagnostic(
        `load: ${report?.summary.total} requests, ${report?.summary.failed} failed, ${report?.summary.delayedOver1s} delayed >= 1 s, served by ${JSON.stringify(report?.summary.byServedBy)}`,
      );
      assert.equal(report?.summary.failed, 0, JSON.stringify(report?.summary.byOutcome));
      assert.ok(
        (report?.summary.total ?? 0) > 1000,
        `load ran throughout: ${report?.summary.total} requests`,
      );
    },
  );

  test('issue 16 item 2: a switch from an LC that does not hold the service address is refused', async () => {
    const lc2Before = await nicsOf(f, 'lc2');
    const out = await f.t.cli(['--json', 'switch', 'lc2', 'lc1', '--method', 'instant'], { okCodes: [1] });
    const error = (JSON.parse(out.stdout) as { error: { code: string; message: string; hint: string } })
      .error;
    assert.equal(error.code, 'SWITCH_ADDRESS_NOT_HELD', error.message);
    assert.match(error.message, new RegExp(`lc2 does not hold the service address ${f.service}/24`));
    assert.match(error.message, /lc1 holds it/);
    assert.match(error.hint, /understudy switch lc1 lc2/);
    assert.deepEqual(await nicsOf(f, 'lc2'), lc2Before, 'nothing changed on lc2');
    assert.equal((await f.get('/version')).servedBy, 'lc1');
  });

  test('issue 16 item 1: an operator adds a NIC to an LC and removes it (lc nic add|remove)', async () => {
    await f.t.lc({ name: 'lc3', addresses: [] }, { start: false });
    assert.deepEqual(await nicsOf(f, 'lc3'), [], 'lc3 was made without a NIC');
    const address = `${f.service.replace(/\.10$/, '.13')}/24`;
    const added = JSON.parse(
      (await f.t.cli(['--json', 'lc', 'nic', 'add', 'lc3', '--address', address])).stdout,
    ) as { name: string; mac: string };
    assert.equal(added.name, 'eth0');
    assert.deepEqual(await nicsOf(f, 'lc3'), [{ name: 'eth0', addresses: [address] }]);
    assert.deepEqual(
      getLc(f.t.app.db, 'lc3').nics.map((n) => [n.name, n.mac, n.addresses]),
      [['eth0', added.mac, [address]]],
    );
    const taken = await f.t.cli(['lc', 'nic', 'add', 'lc3', '--address', `${f.service}/24`], {
      okCodes: [1],
    });
    assert.match(
      taken.stderr,
      new RegExp(`address ${f.service.replace(/\./g, '\\.')} is already used by LC lc1`),
    );
    const serving = getLc(f.t.app.db, 'lc1').nics[0]!.name;
    const inUse = await f.t.cli(['--json', 'lc', 'nic', 'remove', 'lc1', serving], { okCodes: [1] });
    assert.equal((JSON.parse(inUse.stdout) as { error: { code: string } }).error.code, 'NIC_IN_USE');
    await f.t.cli(['lc', 'nic', 'remove', 'lc3', 'eth0']);
    assert.deepEqual(await nicsOf(f, 'lc3'), []);
    assert.deepEqual(getLc(f.t.app.db, 'lc3').nics, []);
    const missing = await f.t.cli(['--json', 'lc', 'nic', 'remove', 'lc3', 'eth0'], { okCodes: [1] });
    assert.equal((JSON.parse(missing.stdout) as { error: { code: string } }).error.code, 'NIC_NOT_FOUND');
  });
});
