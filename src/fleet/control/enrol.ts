/**
 * Hosts join the fleet with a one-time token: the control plane stores only the token's hash, the
 * agent sends the token with a CSR, and gets back a client certificate whose CN is the host's own
 * PostgreSQL role (created here, member of fleet_agent, so row-level security applies to it).
 * Revocation marks the certificate in the CA's CRL, reloads the server, disables the role and ends
 * its sessions.
 */
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { UnderstudyError } from '../../core/index.ts';
import { revokeCertificate, signCsr, type FleetCa } from './ca.ts';
import { agentGroupRole } from './schema.ts';

const hostPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const agentRoleOf = (host: string): string => `agent_${host.replace(/-/g, '_')}`;

function checkHost(host: string): void {
  if (!hostPattern.test(host))
    throw new UnderstudyError('INVALID_ARGUMENT', `host name "${host}" is not valid`, {
      hint: 'Use lower-case letters, digits and dashes (at most 63), starting with a letter or digit.',
    });
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Makes a one-time enrolment token for `host` (printed once; only its hash is kept). */
export async function createEnrolToken(
  db: pg.Pool,
  options: { host: string; ttlMinutes?: number },
): Promise<string> {
  checkHost(options.host);
  const token = `enrol_${randomBytes(24).toString('base64url')}`;
  await db.query(
    `INSERT INTO fleet.enrol_tokens (token_hash, host_id, expires_at) VALUES ($1, $2, now() + make_interval(mins => $3))`,
    [hashToken(token), options.host, options.ttlMinutes ?? 60],
  );
  return token;
}

export interface EnrolResult {
  host: string;
  role: string;
  certPem: string;
  serial: string;
}

/**
 * Uses the token once and signs the agent's CSR. The token must be unused, unexpired and made for
 * `host`; otherwise FLEET_ENROL_REFUSED (and the refusal is audited).
 */
export async function enrolHost(
  db: pg.Pool,
  ca: FleetCa,
  request: { host: string; token: string; csrPem: string },
): Promise<EnrolResult> {
  checkHost(request.host);
  const role = agentRoleOf(request.host);
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const used = await client.query(
      `UPDATE fleet.enrol_tokens SET used_at = now()
       WHERE token_hash = $1 AND host_id = $2 AND used_at IS NULL AND expires_at > now() RETURNING host_id`,
      [hashToken(request.token), request.host],
    );
    if (used.rowCount !== 1) {
      await client.query('ROLLBACK');
      await audit(db, {
        actor: request.host,
        action: 'enrol',
        outcome: 'refused',
        detail: { reason: 'token' },
      });
      throw new UnderstudyError(
        'FLEET_ENROL_REFUSED',
        `enrolment of host ${request.host} refused: token unknown, used, expired or for another host`,
      );
    }
    const signed = await signCsr(ca, { csrPem: request.csrPem, commonName: role, kind: 'client' });
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    if (exists.rowCount === 0) await client.query(`CREATE ROLE ${role} LOGIN IN ROLE ${agentGroupRole}`);
    else await client.query(`ALTER ROLE ${role} LOGIN`);
    await client.query(
      `INSERT INTO fleet.hosts (id, role_name, cert_serial, enrolled_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (id) DO UPDATE SET cert_serial = $3, enrolled_at = now(), revoked_at = NULL`,
      [request.host, role, signed.serial],
    );
    await client.query(
      `INSERT INTO fleet.audit (actor, action, outcome, detail) VALUES ($1, 'enrol', 'allowed', $2)`,
      [request.host, { serial: signed.serial, role }],
    );
    await client.query('COMMIT');
    return { host: request.host, role, certPem: signed.certPem, serial: signed.serial };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Revokes `host`'s certificate: CRL updated in the CA (the caller installs it on the server), the
 * role may no longer log in, its open sessions are ended, and my_host() no longer answers for it.
 */
export async function revokeHost(db: pg.Pool, ca: FleetCa, host: string): Promise<{ serial: string }> {
  const row = await db.query<{ cert_serial: string | null; role_name: string }>(
    'SELECT cert_serial, role_name FROM fleet.hosts WHERE id = $1',
    [host],
  );
  const found = row.rows[0];
  if (!found?.cert_serial)
    throw new UnderstudyError('FLEET_NOT_FOUND', `host ${host} is not enrolled`, {
      hint: 'Check the host name; `understudy control compliance` lists the enrolled hosts and their LCs.',
    });
  await revokeCertificate(ca, found.cert_serial);
  await db.query('UPDATE fleet.hosts SET revoked_at = now() WHERE id = $1', [host]);
  await db.query(`ALTER ROLE ${found.role_name} NOLOGIN`);
  await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
    found.role_name,
  ]);
  await audit(db, {
    actor: 'control',
    action: 'revoke',
    outcome: 'allowed',
    detail: { host, serial: found.cert_serial },
  });
  return { serial: found.cert_serial };
}

export async function audit(
  db: pg.Pool | pg.ClientBase,
  entry: { actor: string; action: string; outcome: 'allowed' | 'refused'; detail?: Record<string, unknown> },
): Promise<void> {
  await db.query('INSERT INTO fleet.audit (actor, action, outcome, detail) VALUES ($1, $2, $3, $4)', [
    entry.actor,
    entry.action,
    entry.outcome,
    entry.detail ?? {},
  ]);
}
