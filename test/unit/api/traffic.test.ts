// The arithmetic of the traffic samples: the kernel's counter read from /proc/net/snmp, rates over
// the interval, a restarted service's counter counted from zero, unknown stays unknown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOutRsts, rate } from '../../../src/api/index.ts';

const snmp = `Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 5255617
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 313911 299177 12896 4733 3 5253144 5253385 626 0 17786 0
Udp: InDatagrams NoPorts
Udp: 1 2
`;

void test('OutRsts is read from the Tcp lines of /proc/net/snmp', () => {
  assert.equal(parseOutRsts(snmp), 17786);
  assert.equal(parseOutRsts('Udp: InDatagrams\nUdp: 1\n'), null);
  assert.equal(parseOutRsts(''), null);
});

void test('rates per second over the interval; a counter that went back restarts from zero; null stays null', () => {
  assert.equal(rate(1000, 1200, 1000), 200);
  assert.equal(rate(1000, 1300, 1500), 200);
  assert.equal(rate(5000, 150, 1000), 150, 'the service restarted: its counter began again');
  assert.equal(rate(null, 10, 1000), null);
  assert.equal(rate(10, null, 1000), null);
  assert.equal(rate(10, 20, 0), null);
});
