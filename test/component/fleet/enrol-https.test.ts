// Enrolment over the network: the control plane (a real PostgreSQL 15 with TLS and the HTTPS
// enrolment endpoint) listens on an address in 198.18.0.0/15 on a bridge the test makes; the agent
// enrols with `understudy agent enrol` (a child process) and then logs in to PostgreSQL with the
// certificate it got. A wrong token, another CA's endpoint certificate, a missing or revoked client
// certificate are each refused, and the refusals are audited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import pg from 'pg';
import { exec } from '../../../src/core/index.ts';
import {
  clientConfig,
  createCa,
  createEnrolToken,
  installCrl,
  revokeHost,
  startEnrolServer,
  type AgentConfig,
} from '../../../src/fleet/index.ts';
import { createControlNetwork, startFleetDb } from '../../helpers/fleet-fixture.ts';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

function cli(args: readonly string[], okCodes: number[] = [0]) {
  return exec(['node', '--import', 'tsx', path.join(repoRoot, 'src/cli/entry.ts'), '--json', ...args], {
    cwd: repoRoot,
    okCodes,
    timeoutMs: 120_000,
  });
}

/** GET over HTTPS with an optional client certificate; resolves with the status and JSON body. */
function get(
  url: string,
  options: { ca: string; cert?: string; key?: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ...options, agent: false, rejectUnauthorized: true }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

test('an agent enrols over HTTPS in the test network with a one-time token and then works over mutual TLS', async (t) => {
  const net = await createControlNetwork();
  const fx = await startFleetDb(t, { network: net });
  const server = await startEnrolServer({
    db: fx.db,
    ca: fx.ca,
    host: net.address,
    database: { host: fx.endpoint.host, port: fx.endpoint.port, database: fx.endpoint.database },
    tlsDir: path.join(fx.dir, 'enrol-tls'),
  });
  fx.defer(() => server.close());
  assert.match(server.url, /^https:\/\/198\.1[89]\.\d+\.\d+:\d+$/);

  // A wrong token: refused with FLEET_ENROL_REFUSED, audited, no certificate written.
  await createEnrolToken(fx.db, { host: 'web-1' });
  const agentDir = path.join(fx.dir, 'agent-web-1');
  const refused = await cli(
    [
      'agent',
      'enrol',
      'web-1',
      'enrol_not-a-token',
      '--url',
      server.url,
      '--ca',
      fx.ca.certFile,
      '--dir',
      agentDir,
    ],
    [1],
  );
  assert.match(refused.stdout + refused.stderr, /FLEET_ENROL_REFUSED/);
  assert.equal(fs.existsSync(path.join(agentDir, 'agent.json')), false);

  // An endpoint whose certificate is not of the CA the agent was given: the agent refuses it.
  const otherCa = await createCa(path.join(fx.dir, 'other-ca'));
  const token = await createEnrolToken(fx.db, { host: 'web-1' });
  const wrongCa = await cli(
    ['agent', 'enrol', 'web-1', token, '--url', server.url, '--ca', otherCa.certFile, '--dir', agentDir],
    [1],
  );
  assert.match(wrongCa.stdout + wrongCa.stderr, /FLEET_ENROL_UNREACHABLE/);

  // The right CA and token: enrolled; the token is not used up by the refused attempt above.
  const enrolled = await cli([
    'agent',
    'enrol',
    'web-1',
    token,
    '--url',
    server.url,
    '--ca',
    fx.ca.certFile,
    '--dir',
    agentDir,
  ]);
  assert.equal((JSON.parse(enrolled.stdout) as { role: string }).role, 'agent_web_1');
  const config = JSON.parse(fs.readFileSync(path.join(agentDir, 'agent.json'), 'utf8')) as AgentConfig;
  assert.equal(config.endpoint.host, net.address);
  assert.equal(fs.statSync(config.identity.keyFile).mode & 0o777, 0o600);

  // The same token a second time: refused.
  const again = await cli(
    [
      'agent',
      'enrol',
      'web-1',
      token,
      '--url',
      server.url,
      '--ca',
      fx.ca.certFile,
      '--dir',
      path.join(fx.dir, 'agent-again'),
    ],
    [1],
  );
  assert.match(again.stdout + again.stderr, /FLEET_ENROL_REFUSED/);

  // With its certificate the agent logs in to PostgreSQL at the network address as its own role.
  const agentDb = new pg.Client(clientConfig(config.endpoint, config.identity));
  await agentDb.connect();
  const me = await agentDb.query<{ host: string }>('SELECT fleet.my_host() AS host');
  assert.equal(me.rows[0]?.host, 'web-1');
  await agentDb.query('SELECT * FROM fleet.claim_work($1, 1)', ['web-1']);
  await agentDb.end();

  // The endpoint's mutual-TLS check: the agent's certificate is known; none is refused.
  const ca = fs.readFileSync(fx.ca.certFile, 'utf8');
  const whoami = await get(`${server.url}/v1/whoami`, {
    ca,
    cert: fs.readFileSync(config.identity.certFile, 'utf8'),
    key: fs.readFileSync(config.identity.keyFile, 'utf8'),
  });
  assert.equal(whoami.status, 200);
  assert.equal(whoami.body.host, 'web-1');
  assert.equal((await get(`${server.url}/v1/whoami`, { ca })).status, 401);

  // Revoked: the endpoint refuses the certificate, and so does PostgreSQL.
  await revokeHost(fx.db, fx.ca, 'web-1');
  await installCrl(fx.cluster, fx.ca);
  const revoked = await get(`${server.url}/v1/whoami`, {
    ca,
    cert: fs.readFileSync(config.identity.certFile, 'utf8'),
    key: fs.readFileSync(config.identity.keyFile, 'utf8'),
  });
  assert.equal(revoked.status, 403);
  const afterRevoke = new pg.Client(clientConfig(config.endpoint, config.identity));
  await assert.rejects(afterRevoke.connect());

  const audits = await fx.db.query<{ action: string; outcome: string; reason: string | null }>(
    `SELECT action, outcome, detail->>'reason' AS reason FROM fleet.audit ORDER BY id`,
  );
  const seen = audits.rows.map((a) => `${a.action}:${a.outcome}:${a.reason ?? ''}`);
  assert.ok(seen.includes('enrol:refused:token'), seen.join(' '));
  assert.ok(seen.includes('enrol:allowed:'), seen.join(' '));
  assert.ok(seen.includes('whoami:refused:revoked'), seen.join(' '));
  assert.ok(
    seen.some((s) => s.startsWith('whoami:refused:') && !s.endsWith('revoked')),
    seen.join(' '),
  );
});
