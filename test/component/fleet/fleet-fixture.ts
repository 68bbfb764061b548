// A real PostgreSQL 15 for the fleet's component tests: its own CA, initdb in a temp dir, a free
// port, TLS on; stopped by pid and removed after the test, even when it fails.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { exec } from '../../../src/core/index.ts';
import {
  bootstrapControlDatabase,
  controlRole,
  createCa,
  createCluster,
  createEnrolToken,
  createKeyAndCsr,
  enrolHost,
  freePort,
  issueCertificate,
  openPool,
  startCluster,
  stopCluster,
  type ClientIdentity,
  type DbEndpoint,
  type FleetCa,
  type PgCluster,
} from '../../../src/fleet/index.ts';

export interface FleetDb {
  dir: string;
  ca: FleetCa;
  cluster: PgCluster;
  endpoint: DbEndpoint;
  control: ClientIdentity;
  db: pg.Pool;
  /** Runs `fn` at teardown before the pools close and the server stops (last deferred first). */
  defer(fn: () => Promise<void>): void;
  /** Enrols `host` with a fresh one-time token and returns its identity. */
  enrolAgent(host: string): Promise<ClientIdentity & { serial: string }>;
}

export async function startFleetDb(
  t: { after: (fn: () => unknown) => void },
  options: { network?: ControlNetwork } = {},
): Promise<FleetDb> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fleet-'));
  fs.chmodSync(dir, 0o711); // the server runs as postgres and must reach its data directory
  const pools: pg.Pool[] = [];
  const deferred: (() => Promise<void>)[] = [];
  const started: { cluster?: PgCluster } = {};
  t.after(async () => {
    for (const fn of deferred.reverse()) await fn();
    for (const p of pools) await p.end().catch(() => undefined);
    if (started.cluster) await stopCluster(started.cluster);
    // The address goes only after every connection to it ended (else they hang half closed).
    await options.network?.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const ca = await createCa(path.join(dir, 'ca'));
  const cluster = await createCluster({
    dir: path.join(dir, 'pg'),
    ca,
    port: await freePort(),
    ...(options.network ? { host: options.network.address } : {}),
  });
  started.cluster = cluster;
  await startCluster(cluster);
  const controlCert = await issueCertificate(ca, {
    outDir: path.join(dir, 'control'),
    name: 'control',
    commonName: controlRole,
    kind: 'client',
  });
  const control: ClientIdentity = {
    user: controlRole,
    certFile: controlCert.certFile,
    keyFile: controlCert.keyFile,
  };
  const endpoint = await bootstrapControlDatabase(cluster, control, ca.certFile);
  const db = openPool(endpoint, control);
  pools.push(db);
  return {
    dir,
    ca,
    cluster,
    endpoint,
    control,
    db,
    defer: (fn) => deferred.push(fn),
    async enrolAgent(host) {
      const agentDir = path.join(dir, 'agents', host);
      fs.mkdirSync(agentDir, { recursive: true });
      const token = await createEnrolToken(db, { host });
      const keyFile = path.join(agentDir, 'agent.key');
      const csrPem = await createKeyAndCsr({ dir: agentDir }, { keyFile, commonName: host });
      const enrolled = await enrolHost(db, ca, { host, token, csrPem });
      const certFile = path.join(agentDir, 'agent.crt');
      fs.writeFileSync(certFile, enrolled.certPem);
      return { user: enrolled.role, certFile, keyFile, serial: enrolled.serial };
    },
  };
}

export interface ControlNetwork {
  bridge: string;
  /** The control plane's address on it, e.g. 198.18.42.1. */
  address: string;
  remove(): Promise<void>;
}

/**
 * A bridge of its own for the control plane in this network namespace, with an address in
 * 198.18.0.0/15 (third octet chosen among those no interface of this host uses yet); agents on this
 * host reach the control plane there. startFleetDb removes it after PostgreSQL stopped (connections
 * to an address that went away would hang half closed).
 */
export async function createControlNetwork(): Promise<ControlNetwork> {
  const used = (await exec(['ip', '-o', '-4', 'addr', 'show'])).stdout;
  let third = 0;
  for (let i = 0; i < 50 && (third === 0 || used.includes(` 198.18.${third}.`)); i += 1)
    third = crypto.randomInt(1, 254);
  const bridge = `usfc${crypto.randomBytes(4).toString('hex')}`;
  const address = `198.18.${third}.1`;
  const remove = async (): Promise<void> => {
    await exec(['ip', 'link', 'del', bridge], { okCodes: [0, 1] });
  };
  await exec(['ip', 'link', 'add', bridge, 'type', 'bridge']);
  try {
    await exec(['ip', 'addr', 'add', `${address}/24`, 'dev', bridge]);
    await exec(['ip', 'link', 'set', bridge, 'up']);
  } catch (error) {
    await remove();
    throw error;
  }
  return { bridge, address, remove };
}
