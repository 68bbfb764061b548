/**
 * Connections to the control plane's PostgreSQL: always TLS with the server verified against the
 * fleet CA, and a client certificate whose CN is the role to log in as (pg_hba `cert`).
 */
import fs from 'node:fs';
import pg from 'pg';
import { UnderstudyError } from '../../core/index.ts';
import { bootstrapRole, controlRole, fleetDatabase, type PgCluster } from './pg-cluster.ts';
import { migrate } from './schema.ts';

export interface DbEndpoint {
  host: string;
  port: number;
  database: string;
  /** The fleet CA's certificate, to verify the server. */
  caFile: string;
}

export interface ClientIdentity {
  /** The PostgreSQL role; must equal the certificate's CN. */
  user: string;
  certFile: string;
  keyFile: string;
}

function sslOptions(endpoint: DbEndpoint, identity: Partial<ClientIdentity>): pg.ClientConfig['ssl'] {
  return {
    ca: fs.readFileSync(endpoint.caFile, 'utf8'),
    ...(identity.certFile ? { cert: fs.readFileSync(identity.certFile, 'utf8') } : {}),
    ...(identity.keyFile ? { key: fs.readFileSync(identity.keyFile, 'utf8') } : {}),
    rejectUnauthorized: true,
  };
}

/** The pg client configuration for `identity` at `endpoint` (certificate files read now). */
export function clientConfig(
  endpoint: DbEndpoint,
  identity: Partial<ClientIdentity> & { user: string },
): pg.PoolConfig {
  return {
    host: endpoint.host,
    port: endpoint.port,
    database: endpoint.database,
    user: identity.user,
    ssl: sslOptions(endpoint, identity),
    connectionTimeoutMillis: 10_000,
    application_name: 'understudy',
  };
}

/** A pool that logs in as `identity`; errors of idle clients (server restart) are absorbed by pg.Pool. */
export function openPool(endpoint: DbEndpoint, identity: ClientIdentity, max = 10): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(endpoint, identity), max, idleTimeoutMillis: 30_000 });
  // An idle client whose server went away emits 'error' on the pool; the next checkout reconnects.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Wraps a connection failure in FLEET_DB_UNREACHABLE naming the endpoint and role. */
export function unreachable(endpoint: DbEndpoint, user: string, cause: unknown): UnderstudyError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new UnderstudyError(
    'FLEET_DB_UNREACHABLE',
    `PostgreSQL at ${endpoint.host}:${endpoint.port} refused or dropped ${user}: ${reason}`,
    { cause },
  );
}

/**
 * On a cluster made by createCluster: creates the control plane's role and database through the
 * cluster's own unix socket (the only place the bootstrap superuser can log in), then migrates
 * the schema as the control role. Idempotent.
 */
export async function bootstrapControlDatabase(
  cluster: PgCluster,
  control: ClientIdentity,
  caFile: string,
): Promise<DbEndpoint> {
  const admin = new pg.Client({
    host: cluster.socketDir,
    port: cluster.port,
    user: bootstrapRole,
    database: 'postgres',
  });
  await admin.connect();
  try {
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [controlRole]);
    if (role.rowCount === 0) await admin.query(`CREATE ROLE ${controlRole} LOGIN CREATEROLE BYPASSRLS`);
    const db = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [fleetDatabase]);
    if (db.rowCount === 0) await admin.query(`CREATE DATABASE ${fleetDatabase} OWNER ${controlRole}`);
    // The control plane reloads the server's configuration after a revocation (new CRL).
    await admin.query(`GRANT EXECUTE ON FUNCTION pg_reload_conf() TO ${controlRole}`);
    await admin.query(`GRANT pg_signal_backend TO ${controlRole}`);
  } finally {
    await admin.end();
  }
  const endpoint: DbEndpoint = { host: cluster.host, port: cluster.port, database: fleetDatabase, caFile };
  const client = new pg.Client(clientConfig(endpoint, control));
  await client.connect();
  try {
    await migrate(client);
  } finally {
    await client.end();
  }
  return endpoint;
}
