/**
 * A service whose health check is a command run inside the LC, switched between two real LXC LCs
 * (systemd, unmodified Debian nginx) with `understudy switch`: the switch runs the command inside the
 * standby through the driver's exec — nginx's port answering is not enough.
 * - The command fails on the standby while nginx listens there: the switch refuses before any traffic
 *   moves, naming the command and its exit status.
 * - The command passes before the switch and fails once the standby holds the service address: the
 *   switch is reversed; under load, no request fails and the service stays on LC1.
 * - The same reversal with a keep-alive connection to LC2 on a client port whose earlier connection
 *   LC1 still holds in TIME-WAIT: LC2 closes the connection before it lets the address go (cut, its
 *   next request would reach LC1's TIME-WAIT socket, which answers with an ACK only).
 * - The command passes: the switch goes through, and the command's own trace is found inside LC2.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startLc } from '../../../src/app/index.ts';
import { spawnProcess } from '../../../src/core/index.ts';
import { startClientLoad } from '../../../src/demo/index.ts';
import { getLc, setServices, validateServices } from '../../../src/inventory/index.ts';
import type { TestClient, TestHost } from '../../helpers/host-fixture.ts';
import { createNginxRunBed, defaultSite, nginxService, type NginxRunBed } from './nginx-run-bed.ts';

describe('a command health check runs inside the LC during the switch', () => {
  let bed: NginxRunBed;
  let t: TestHost;
  let client: TestClient;
  let serviceAddress: string;
  before(async () => {
    bed = await createNginxRunBed();
    ({ t, client } = bed);
    serviceAddress = `${t.prefix}.10`;
    // LC2 serves too (the standby of a switch on its own): nginx with the same X-Served-By header.
    const lc2 = getLc(t.app.db, 'lc2');
    const text = (await t.host.driver.readFile(lc2, defaultSite)).toString();
    await t.host.driver.writeFile(
      lc2,
      defaultSite,
      text.replace('server_name _;', 'server_name _;\n\tadd_header X-Served-By $hostname always;'),
    );
    await startLc(t.app.db, t.host, 'lc2', { timeoutMs: 60_000 });
  });
  after(async () => bed?.dispose());

  /** LC1 declares nginx with this command as its health check. */
  const declareCheck = (argv: string[]): void => {
    setServices(
      t.app.db,
      'lc1',
      validateServices([{ ...nginxService, health: { kind: 'command', argv } }], 'test services'),
    );
  };
  const servedBy = async (): Promise<string | undefined> => {
    const r = await client.get(`http://${serviceAddress}/`);
    assert.equal(r.status, 200);
    return r.servedBy;
  };

  test('the command fails on the standby while nginx listens: the switch refuses, nothing moves', async () => {
    declareCheck(['sh', '-c', 'test -e /srv/app/ready || { echo "no /srv/app/ready" >&2; exit 3; }']);
    const lc2Port = await client.get(`http://${t.prefix}.11/`);
    assert.equal(lc2Port.status, 200, 'nginx answers on the standby: a TCP connect would pass');
    const out = await t.cli(['switch', 'lc1', 'lc2', '--method', 'instant'], { okCodes: [1] });
    assert.match(out.stderr, /not healthy/);
    assert.match(out.stderr, /test -e \/srv\/app\/ready.*in lc2 exited 3: no \/srv\/app\/ready/);
    assert.equal(await servedBy(), 'lc1');
    assert.equal(getLc(t.app.db, 'lc1').role, 'active');
  });

  test('the command fails once the standby holds the service address: the switch is reversed, no request fails', async () => {
    // Passes on LC2 before the switch; fails as soon as LC2 holds the service address.
    declareCheck(['sh', '-c', `! ip -o -4 addr show | grep -qF " ${serviceAddress}/"`]);
    const load = await startClientLoad({
      netns: client.netns,
      url: `http://${serviceAddress}/`,
      rate: 200,
      maxDurationS: 120,
    });
    const out = await t.cli(['switch', 'lc1', 'lc2', '--method', 'instant'], { okCodes: [1] });
    await new Promise((r) => setTimeout(r, 500));
    const report = await load.stop();
    assert.match(out.stderr, /was reversed; the service stays on lc1/);
    assert.match(out.stderr, /failed its check after the switch: .* in lc2 exited 1/);
    assert.equal(report.summary.failed, 0, JSON.stringify(report.summary.byOutcome));
    assert.ok(report.summary.total > 100, `requests sent: ${report.summary.total}`);
    assert.equal(await servedBy(), 'lc1');
    const held = await t.host.driver.netExec('lc2', ['ip', '-o', '-4', 'addr', 'show']);
    assert.doesNotMatch(held.stdout, new RegExp(` ${serviceAddress.replaceAll('.', '\\.')}/`));
  });

  test('reversed: a keep-alive connection to LC2 on a port LC1 holds in TIME-WAIT is closed, not left unanswered', async () => {
    // The check takes a second, so that a client connects to LC2 while it holds the address.
    declareCheck(['sh', '-c', `sleep 1; ! ip -o -4 addr show | grep -qF " ${serviceAddress}/"`]);
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    // LC1 closes first (Connection: close): its side of the connection stays in TIME-WAIT.
    await client.run([
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-H',
      'Connection: close',
      '--local-port',
      String(port),
      `http://${serviceAddress}/`,
    ]);
    const tw = await t.host.driver.netExec('lc1', [
      'ss',
      '-Htn',
      'state',
      'time-wait',
      `( dport = :${port} )`,
    ]);
    assert.match(tw.stdout, new RegExp(`:${port}\\b`), 'LC1 holds the earlier connection in TIME-WAIT');
    const switched = t.cli(['switch', 'lc1', 'lc2', '--method', 'instant'], { okCodes: [1] });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const held = await t.host.driver.netExec('lc2', ['ip', '-o', '-4', 'addr', 'show']);
      if (held.stdout.includes(` ${serviceAddress}/`)) break;
      assert.ok(Date.now() < deadline, 'LC2 took the address');
      await new Promise((r) => setTimeout(r, 20));
    }
    const keptAlive = spawnProcess([
      'ip',
      'netns',
      'exec',
      client.netns,
      process.execPath,
      '-e',
      keepAliveClient,
      serviceAddress,
      String(port),
    ]);
    let said = '';
    keptAlive.child.stdout?.on('data', (c: Buffer) => (said += c.toString()));
    const out = await switched;
    assert.match(out.stderr, /was reversed; the service stays on lc1/);
    keptAlive.child.stdin?.end('go\n');
    const result = await keptAlive.done;
    assert.equal(result.exitCode, 0, result.stderr);
    const [first, second] = said.trim().split('\n');
    assert.equal(first, 'first: 200 lc2', 'the connection was made to LC2 while it held the address');
    assert.equal(second, 'second: closed by the server before it was sent');
    assert.equal(await servedBy(), 'lc1');
  });

  test('the command passes: the switch goes through, and the command ran inside LC2', async () => {
    declareCheck(['sh', '-c', 'echo checked >> /run/health-ran; systemctl is-active --quiet nginx.service']);
    await t.host.driver.exec('lc2', ['rm', '-f', '/run/health-ran']);
    const out = await t.cli(['--json', 'switch', 'lc1', 'lc2', '--method', 'instant']);
    assert.equal((JSON.parse(out.stdout) as { outcome: string }).outcome, 'switched');
    assert.equal(await servedBy(), 'lc2');
    const ran = await t.host.driver.exec('lc2', ['cat', '/run/health-ran']);
    assert.match(ran.stdout, /checked/, 'the check ran inside LC2');
  });
});

/**
 * Run in the client's namespace: `node -e keepAliveClient <address> <local port>`. Opens one
 * keep-alive connection from that port, sends a request and prints `first: <status> <X-Served-By>`;
 * on a line on stdin, sends a second request on the same connection unless the server has closed it,
 * and prints `second: <status> <X-Served-By>`, `second: closed by the server before it was sent`,
 * `second: reset` or `second: no answer within 3 s`.
 */
const keepAliveClient = `
const net = require('node:net');
const [host, localPort] = process.argv.slice(1);
const socket = net.connect({ host, port: 80, localPort: Number(localPort) });
let buffer = '';
let ended = false;
let waiting;
const request = 'GET / HTTP/1.1\\r\\nHost: ' + host + '\\r\\n\\r\\n';
const answer = () => {
  const m = /^HTTP\\/1\\.1 (\\d+)[^]*?\\r\\nx-served-by: ([^\\r]*)[^]*?\\r\\n\\r\\n/im.exec(buffer);
  if (!m) return undefined;
  const length = Number(/content-length: (\\d+)/i.exec(buffer)?.[1] ?? 0);
  if (buffer.length < m[0].length + length) return undefined;
  buffer = buffer.slice(m[0].length + length);
  return m[1] + ' ' + m[2];
};
socket.on('data', (c) => {
  buffer += c.toString('latin1');
  const a = waiting && answer();
  if (a) waiting(a);
});
socket.on('end', () => { ended = true; });
socket.on('error', (e) => { if (waiting) waiting(e.code === 'ECONNRESET' ? 'reset' : e.code); });
const exchange = () => new Promise((resolve) => {
  waiting = resolve;
  socket.write(request);
  setTimeout(() => resolve('no answer within 3 s'), 3000);
});
socket.on('connect', async () => {
  console.log('first: ' + (await exchange()));
  waiting = undefined;
  process.stdin.once('data', async () => {
    if (ended) console.log('second: closed by the server before it was sent');
    else console.log('second: ' + (await exchange()));
    process.exit(0);
  });
});
`;
