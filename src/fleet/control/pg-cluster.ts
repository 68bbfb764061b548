/**
 * A PostgreSQL 15 cluster of our own for the control plane: initdb in a directory, TLS on with
 * certificates of the fleet CA and its CRL, client certificates required for every TCP connection
 * (pg_hba `cert`: the certificate's CN must be the role's name), structured server log (jsonlog)
 * that the audit importer reads. It never touches the system's postgresql service; the server is
 * started with pg_ctl as the `postgres` user and stopped by its pid.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { exec, sleep, UnderstudyError } from '../../core/index.ts';
import { issueCertificate, type FleetCa } from './ca.ts';

const pgBin = '/usr/lib/postgresql/15/bin';
/** The OS user the server runs as (PostgreSQL refuses to run as root). */
const pgUser = 'postgres';
/** The cluster's bootstrap superuser; reachable only over the cluster's own unix socket. */
export const bootstrapRole = 'postgres';
/** The control plane's role: owns the fleet schema, creates agent roles, bypasses row-level security. */
export const controlRole = 'understudy_control';
export const fleetDatabase = 'fleet';

export interface PgCluster {
  dir: string;
  dataDir: string;
  socketDir: string;
  host: string;
  port: number;
  /** The server's structured log (one JSON object a line). */
  jsonLogFile: string;
  /** Where the server reads its CRL from (copied from the CA on every revocation). */
  crlFile: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function asPostgres(argv: readonly string[]): Promise<void> {
  try {
    await exec(['runuser', '-u', pgUser, '--', ...argv], { timeoutMs: 120_000 });
  } catch (error) {
    throw new UnderstudyError('FLEET_DB_START_FAILED', `${path.basename(argv[0] ?? '')} failed`, {
      cause: error,
      hint: error instanceof Error ? error.message : undefined,
    });
  }
}

function chownToPostgres(target: string): void {
  const { uid, gid } = fs.statSync('/var/lib/postgresql');
  fs.chownSync(target, uid, gid);
}

/**
 * Creates a cluster in `dir` (which must not exist yet or be empty) listening on host:port with TLS,
 * server certificate from `ca`. Does not start it.
 */
export async function createCluster(options: {
  dir: string;
  ca: FleetCa;
  port: number;
  host?: string;
}): Promise<PgCluster> {
  const host = options.host ?? '127.0.0.1';
  const dir = path.resolve(options.dir);
  const dataDir = path.join(dir, 'data');
  const socketDir = path.join(dir, 'socket');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  for (const d of [dataDir, socketDir]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    chownToPostgres(d);
  }
  await asPostgres([
    path.join(pgBin, 'initdb'),
    '-D',
    dataDir,
    '-U',
    bootstrapRole,
    '--auth-local=trust',
    '--auth-host=reject',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const tls = await issueCertificate(options.ca, {
    outDir: path.join(dir, 'tls'),
    name: 'server',
    commonName: host,
    kind: 'server',
    san: `IP:${host},DNS:localhost`,
  });
  const files: Record<string, string> = {
    'server.crt': tls.certFile,
    'server.key': tls.keyFile,
    'root.crt': options.ca.certFile,
    'root.crl': options.ca.crlFile,
  };
  for (const [name, from] of Object.entries(files)) {
    const to = path.join(dataDir, name);
    fs.copyFileSync(from, to);
    fs.chmodSync(to, 0o600);
    chownToPostgres(to);
  }
  fs.rmSync(path.join(dir, 'tls'), { recursive: true, force: true });
  const conf = [
    `listen_addresses = '${host}'`,
    `port = ${options.port}`,
    `unix_socket_directories = '${socketDir}'`,
    'max_connections = 200',
    'ssl = on',
    "ssl_cert_file = 'server.crt'",
    "ssl_key_file = 'server.key'",
    "ssl_ca_file = 'root.crt'",
    "ssl_crl_file = 'root.crl'",
    "ssl_min_protocol_version = 'TLSv1.2'",
    'logging_collector = on',
    "log_destination = 'jsonlog'",
    "log_directory = 'log'",
    "log_filename = 'postgresql.log'",
    'log_rotation_age = 0',
    'log_rotation_size = 0',
    'log_connections = on',
    "log_min_error_statement = 'error'",
    'fsync = on',
    '',
  ].join('\n');
  fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), conf);
  // Unix socket: bootstrap only. TCP: TLS and a client certificate of the fleet CA, CN = role.
  fs.writeFileSync(
    path.join(dataDir, 'pg_hba.conf'),
    [
      `local all ${bootstrapRole} trust`,
      `hostssl all all ${host}/32 cert`,
      `hostnossl all all 0.0.0.0/0 reject`,
      '',
    ].join('\n'),
  );
  return describeCluster(dir, host, options.port);
}

function describeCluster(dir: string, host: string, port: number): PgCluster {
  const dataDir = path.join(dir, 'data');
  return {
    dir,
    dataDir,
    socketDir: path.join(dir, 'socket'),
    host,
    port,
    jsonLogFile: path.join(dataDir, 'log', 'postgresql.json'),
    crlFile: path.join(dataDir, 'root.crl'),
  };
}

/** Starts the server and waits until it accepts connections; returns the postmaster's pid. */
export async function startCluster(cluster: PgCluster): Promise<number> {
  await asPostgres([
    path.join(pgBin, 'pg_ctl'),
    '-D',
    cluster.dataDir,
    '-w',
    '-t',
    '60',
    '-l',
    path.join(cluster.dataDir, 'startup.log'),
    'start',
  ]);
  const pid = clusterPid(cluster);
  if (pid === undefined)
    throw new UnderstudyError(
      'FLEET_DB_START_FAILED',
      `PostgreSQL in ${cluster.dataDir} started but wrote no pid`,
      {
        hint: `Read ${path.join(cluster.dataDir, 'startup.log')}.`,
      },
    );
  return pid;
}

/** The postmaster's pid from postmaster.pid, or undefined when the server is not running. */
export function clusterPid(cluster: PgCluster): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(cluster.dataDir, 'postmaster.pid'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/**
 * Stops the server by its pid: SIGINT (fast shutdown: clients are disconnected, work is durable),
 * SIGQUIT if it does not go within the grace period. Resolves when the process is gone.
 */
export async function stopCluster(cluster: PgCluster, graceMs = 30_000): Promise<void> {
  const pid = clusterPid(cluster);
  if (pid === undefined || !alive(pid)) return;
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    process.kill(pid, 'SIGQUIT');
    while (alive(pid)) await sleep(50);
  }
}

/** Copies the CA's current CRL to the server and asks it to reload, so new connections see it. */
export async function installCrl(cluster: PgCluster, ca: FleetCa): Promise<void> {
  fs.copyFileSync(ca.crlFile, cluster.crlFile);
  chownToPostgres(cluster.crlFile);
  const pid = clusterPid(cluster);
  if (pid !== undefined) process.kill(pid, 'SIGHUP');
  // The postmaster rereads its configuration (and TLS files) asynchronously after SIGHUP.
  await sleep(300);
}
