/** Standby search (step 701) on the resource table of Fig. 5. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findStandbys, type LcRecord } from '../../../src/inventory/index.ts';

function lc(
  name: string,
  cpus: string,
  share: number,
  memoryMb: number,
  disks: [string, number][],
  nic?: string,
  role: LcRecord['role'] = 'idle',
): LcRecord {
  return {
    name,
    driver: 'namespace',
    image: 'busybox',
    cpus,
    cpuSharePercent: share,
    memoryMb,
    role,
    createdAt: '',
    services: [],
    disks: disks.map(([n, size], i) => ({
      name: n,
      pool: 'main',
      sizeMb: size,
      mountPath: i === 0 ? '/' : `/d${i}`,
    })),
    nics: nic ? [{ name: 'eth0', bridge: 'br0', mac: `02:00:00:00:00:0${name.at(-1)}`, addresses: [] }] : [],
  };
}

// Fig. 5: LC1 CPU1/100% 128MB DISK1 DISK2 NET1; LC2 CPU2/100% 128MB DISK3 DISK4 NET2;
// LC3 CPU3/50% 64MB DISK5 (no NIC); LC4 CPU3/50% 64MB DISK6 NET3.
const fig5 = [
  lc(
    'lc1',
    '1',
    100,
    128,
    [
      ['disk1', 1024],
      ['disk2', 1024],
    ],
    'net1',
    'active',
  ),
  lc(
    'lc2',
    '2',
    100,
    128,
    [
      ['disk3', 1024],
      ['disk4', 1024],
    ],
    'net2',
  ),
  lc('lc3', '3', 50, 64, [['disk5', 1024]]),
  lc('lc4', '3', 50, 64, [['disk6', 1024]], 'net3'),
];
const byName = (name: string): LcRecord => fig5.find((l) => l.name === name) as LcRecord;

describe('standby search on the Fig. 5 resource table', () => {
  test('LC2 covers LC1; LC3 and LC4 do not, and the reasons are named', () => {
    const result = findStandbys(byName('lc1'), fig5);
    assert.deepEqual(
      result.candidates.map((c) => c.lc),
      ['lc2'],
    );
    assert.deepEqual(result.candidates[0]?.diskMap, { disk1: 'disk3', disk2: 'disk4' });
    const lc3 = result.rejected.find((r) => r.lc === 'lc3')?.reasons ?? [];
    assert.ok(lc3.includes('CPU share 50% < 100%'));
    assert.ok(lc3.includes('memory 64 MB < 128 MB'));
    assert.ok(
      lc3.some((r) => r.startsWith('no disk of at least 1024 MB')),
      'one disk cannot hold two',
    );
    assert.ok(lc3.includes('it has no NIC'));
    const lc4 = result.rejected.find((r) => r.lc === 'lc4')?.reasons ?? [];
    assert.ok(lc4.includes('CPU share 50% < 100%'));
    assert.ok(!lc4.includes('it has no NIC'));
  });

  test('LC3 covers nobody, for lack of a NIC (and of size)', () => {
    for (const target of ['lc1', 'lc2', 'lc4']) {
      const result = findStandbys(byName(target), fig5);
      assert.ok(!result.candidates.some((c) => c.lc === 'lc3'), `lc3 must not stand in for ${target}`);
      assert.ok(result.rejected.find((r) => r.lc === 'lc3')?.reasons.includes('it has no NIC'));
    }
  });

  test('LC4 covers LC3, which needs no NIC; LC2 covers it too, with more to spare', () => {
    const result = findStandbys(byName('lc3'), fig5);
    assert.deepEqual(
      result.candidates.map((c) => c.lc),
      ['lc4', 'lc2'],
      'best fit first',
    );
    assert.deepEqual(result.candidates[1]?.excess, { cpuSharePercent: 50, memoryMb: 64, diskMb: 0 });
    assert.match(result.rejected.find((r) => r.lc === 'lc1')?.reasons.join() ?? '', /in use \(role active\)/);
  });

  test('LC2 is covered by nobody while LC1 is active; an idle LC1 would cover it', () => {
    assert.deepEqual(findStandbys(byName('lc2'), fig5).candidates, []);
    const idle = fig5.map((l) => (l.name === 'lc1' ? { ...l, role: 'idle' as const } : l));
    assert.deepEqual(
      findStandbys(byName('lc2'), idle).candidates.map((c) => c.lc),
      ['lc1'],
    );
  });

  test('a candidate on another network, with too small a disk, or taken by a run, is refused', () => {
    const target = lc('t', '0', 50, 64, [['sys', 2048]], 'br0');
    const other = {
      ...lc('o', '0', 100, 128, [['sys', 1024]]),
      nics: [{ name: 'eth0', bridge: 'br9', mac: '02:00:00:00:00:09', addresses: [] }],
    };
    const reasons = findStandbys(target, [target, other]).rejected[0]?.reasons ?? [];
    assert.deepEqual(reasons, [
      'no disk of at least 2048 MB for its sys disk',
      'it has no NIC on network br0',
    ]);
    const fit = lc('f', '1', 50, 64, [['sys', 4096]], 'br0');
    assert.match(
      findStandbys(target, [target, fit], new Set(['f'])).rejected[0]?.reasons.join() ?? '',
      /patch run in progress/,
    );
  });
});
