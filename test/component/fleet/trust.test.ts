// Trust in a real PostgreSQL 15 with TLS: agents enrol once with a token, then log in with their
// own client certificate; the server refuses no certificate, another CA's certificate and a revoked
// one; row-level security keeps each agent to its own host's work; every refusal is audited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pg from 'pg';
import {
  agentRoleOf,
  clientConfig,
  createCa,
  createEnrolToken,
  createKeyAndCsr,
  enrolHost,
  importServerAudit,
  installCrl,
  issueCertificate,
  revokeHost,
  type ClientIdentity,
} from '../../../src/fleet/index.ts';
import { startFleetDb, type FleetDb } from '../../helpers/fleet-fixture.ts';

async function connectAs(
  fx: FleetDb,
  identity: Partial<ClientIdentity> & { user: string },
): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(fx.endpoint, identity));
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function seedWork(fx: FleetDb, hosts: string[]): Promise<void> {
  const r = await fx.db.query<{ id: string }>(
    `INSERT INTO fleet.rollouts (name, spec, patch_set, waves, state) VALUES ('t', '{}', '[]', '[]', 'running') RETURNING id`,
  );
  for (const h of hosts)
    await fx.db.query(
      `INSERT INTO fleet.work (rollout_id, wave, host_id, lc, kind, patches) VALUES ($1, 0, $2, 'lc1', 'patch', '[]')`,
      [r.rows[0]?.id, h],
    );
}

test('mTLS and row-level security: refusals for no, foreign and revoked certificates and for another host, all audited', async (t) => {
  const fx = await startFleetDb(t);
  const alpha = await fx.enrolAgent('alpha');
  const beta = await fx.enrolAgent('beta');
  await seedWork(fx, ['alpha', 'beta']);

  // a valid agent sees and takes only its own host's work
  const a = await connectAs(fx, alpha);
  const visible = await a.query<{ host_id: string }>('SELECT host_id FROM fleet.work');
  assert.deepEqual(
    visible.rows.map((r) => r.host_id),
    ['alpha'],
  );
  const claimed = await a.query<{ host_id: string; state: string }>(
    'SELECT host_id, state FROM fleet.claim_work($1, 10)',
    ['alpha'],
  );
  assert.deepEqual(claimed.rows, [{ host_id: 'alpha', state: 'claimed' }]);
  // ... and a second claim gets nothing: the same work is never handed out twice
  assert.equal((await a.query('SELECT * FROM fleet.claim_work($1, 10)', ['alpha'])).rowCount, 0);

  // a valid certificate asking for another host's work: refused by the database itself
  await assert.rejects(
    a.query('SELECT * FROM fleet.claim_work($1, 10)', ['beta']),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, '42501');
      assert.match(e.message, /FLEET_FORBIDDEN/);
      return true;
    },
  );
  // writing a report or changing work of another host is refused too, not only hidden
  await assert.rejects(
    a.query(`INSERT INTO fleet.reports (host_id, kind, body) VALUES ('beta', 'event', '{}')`),
    /row-level security/,
  );
  const hijack = await a.query(`UPDATE fleet.work SET state = 'claimed' WHERE host_id = 'beta'`);
  assert.equal(hijack.rowCount, 0);
  const betaWork = await fx.db.query<{ state: string }>(
    `SELECT state FROM fleet.work WHERE host_id = 'beta'`,
  );
  assert.equal(betaWork.rows[0]?.state, 'queued');
  // nor can an agent touch columns the control plane owns
  await assert.rejects(
    a.query(`UPDATE fleet.work SET host_id = 'alpha' WHERE host_id = 'alpha'`),
    /permission denied/,
  );
  await a.end();

  // no certificate at all
  await assert.rejects(connectAs(fx, { user: alpha.user }), /certificate/);
  // a certificate with the right name, made by another CA
  const rogue = await createCa(path.join(fx.dir, 'rogue-ca'), 'rogue CA');
  const forged = await issueCertificate(rogue, {
    outDir: path.join(fx.dir, 'rogue'),
    name: 'alpha',
    commonName: agentRoleOf('alpha'),
    kind: 'client',
  });
  await assert.rejects(
    connectAs(fx, { user: alpha.user, certFile: forged.certFile, keyFile: forged.keyFile }),
  );
  // a certificate for another role than the one it logs in as
  await assert.rejects(connectAs(fx, { ...beta, user: alpha.user }), /certificate authentication failed/);

  // a stolen certificate, once revoked, is refused; an open session of it is ended
  const stolen = await connectAs(fx, beta);
  await revokeHost(fx.db, fx.ca, 'beta');
  await installCrl(fx.cluster, fx.ca);
  await assert.rejects(stolen.query('SELECT 1'));
  await assert.rejects(connectAs(fx, beta));
  // the other agents are not affected
  (await connectAs(fx, alpha)).end().catch(() => undefined);

  // every refusal is in the audit table, read from the server's own log
  await importServerAudit(fx.db, fx.cluster.jsonLogFile);
  const refused = await fx.db.query<{ actor: string; action: string; reason: string }>(
    `SELECT actor, action, detail->>'reason' AS reason FROM fleet.audit WHERE outcome = 'refused' ORDER BY id`,
  );
  const reasons = refused.rows.map((r) => `${r.action} ${r.actor}: ${r.reason}`).join('\n');
  assert.match(reasons, /query agent_alpha: FLEET_FORBIDDEN/, reasons);
  assert.match(reasons, /query agent_alpha: .*row-level security/, reasons);
  assert.match(reasons, /connect .*: .*(no certificate|requires a valid client certificate)/, reasons);
  // the foreign CA's and the revoked certificate fail the server's TLS verification alike
  assert.equal(
    reasons.match(/connect .*: could not accept SSL connection: certificate verify failed/g)?.length,
    2,
    reasons,
  );
  assert.match(reasons, /connect agent_alpha: certificate authentication failed/, reasons);
  // importing again adds nothing new
  assert.equal(await importServerAudit(fx.db, fx.cluster.jsonLogFile), 0);
});

test('enrolment tokens work once, only for their host, and not after they expire', async (t) => {
  const fx = await startFleetDb(t);
  const csrPem = await createKeyAndCsr(
    { dir: fx.dir },
    { keyFile: path.join(fx.dir, 'g.key'), commonName: 'gamma' },
  );
  const token = await createEnrolToken(fx.db, { host: 'gamma' });
  await assert.rejects(
    enrolHost(fx.db, fx.ca, { host: 'delta', token, csrPem }),
    /FLEET_ENROL_REFUSED|refused/,
  );
  const ok = await enrolHost(fx.db, fx.ca, { host: 'gamma', token, csrPem });
  assert.equal(ok.role, 'agent_gamma');
  assert.match(ok.certPem, /BEGIN CERTIFICATE/);
  await assert.rejects(enrolHost(fx.db, fx.ca, { host: 'gamma', token, csrPem }), /refused/);
  const expired = await createEnrolToken(fx.db, { host: 'epsilon', ttlMinutes: 0 });
  await assert.rejects(enrolHost(fx.db, fx.ca, { host: 'epsilon', token: expired, csrPem }), /refused/);
  const audited = await fx.db.query(
    `SELECT 1 FROM fleet.audit WHERE action = 'enrol' AND outcome = 'refused'`,
  );
  assert.equal(audited.rowCount, 3);
});
