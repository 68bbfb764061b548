// The fleet's test fixture, for component and end-to-end tests alike: a real PostgreSQL 15 (its own
// CA, initdb in a temp dir, a free port, TLS on), optionally on a bridge of its own; agents with the
// fake host runner; the control plane's directory; CLI daemons as child processes. Everything is
// named for the run and stopped (by pid) and removed after the test, even when it fails.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { exec, sleep, spawnProcess, type SpawnedProcess } from '../../src/core/index.ts';
import { openStore } from '../../src/store/index.ts';
import {
  agentJournalSchema,
  FakeHostRunner,
  FleetAgent,
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
  type LcInventory,
  type PgCluster,
} from '../../src/fleet/index.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

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

/** Two LCs, lc-a and lc-b, in group web, each with the security patch openssl-3.0.15 pending. */
export function openSslInventory(): LcInventory[] {
  return ['lc-a', 'lc-b'].map((lc) => ({
    lc,
    group: 'web',
    labels: {},
    services: ['http'],
    installed: [],
    pending: [{ name: 'openssl-3.0.15', security: true }],
  }));
}

export interface FakeAgentsOptions {
  hosts: readonly string[];
  pollMs: number;
  /** What each host reports (default: openSslInventory()). */
  lcs?: LcInventory[];
  /** Per host, the LCs whose patch runs fail. */
  failing?: Record<string, string[]>;
}

/**
 * One FleetAgent a host on `fx`'s control plane, with the fake host runner (50 ms a run): enrolled with
 * a fresh token (its journal in the host's enrolment directory), its inventory reported, not started.
 * Every agent made is stopped at teardown (its pool and journal closed), even when a later one fails.
 */
export async function createFakeAgents(fx: FleetDb, options: FakeAgentsOptions): Promise<FleetAgent[]> {
  const agents: FleetAgent[] = [];
  fx.defer(async () => {
    for (const a of agents) await a.stop();
  });
  for (const host of options.hosts) {
    const agent = new FleetAgent({
      host,
      endpoint: fx.endpoint,
      identity: await fx.enrolAgent(host),
      journal: openStore(path.join(fx.dir, 'agents', host, 'journal.db'), [agentJournalSchema]),
      runner: new FakeHostRunner({
        lcs: options.lcs ?? openSslInventory(),
        runMs: 50,
        failing: new Set(options.failing?.[host] ?? []),
      }),
      pollMs: options.pollMs,
    });
    agents.push(agent);
    await agent.reportInventory();
  }
  return agents;
}

/** The control plane's directory for `understudy control`/`serve --control-dir`: its control.json (where and as whom to connect). */
export function writeControlDir(fx: FleetDb): string {
  const controlDir = path.join(fx.dir, 'control-dir');
  fs.mkdirSync(controlDir);
  fs.writeFileSync(
    path.join(controlDir, 'control.json'),
    JSON.stringify({ endpoint: fx.endpoint, identity: fx.control }),
  );
  return controlDir;
}

/**
 * Starts an understudy CLI command that runs until SIGTERM (e.g. `control run`, `serve`), its stderr
 * appended to `log`. At teardown, before the server stops, it gets SIGTERM (by its pid), and SIGKILL
 * if it has not ended within `stopMs` (default 30 s).
 */
export function spawnCliDaemon(
  fx: FleetDb,
  args: readonly string[],
  options: { log: string[]; stopMs?: number },
): SpawnedProcess {
  const child = spawnProcess([process.execPath, '--import', 'tsx', 'src/cli/entry.ts', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.child.stderr?.on('data', (c: Buffer) => options.log.push(c.toString()));
  fx.defer(async () => {
    if (child.child.exitCode !== null) return;
    child.child.kill('SIGTERM');
    const ended = await Promise.race([
      child.done.then(() => true),
      sleep(options.stopMs ?? 30_000).then(() => false),
    ]);
    if (!ended) child.child.kill('SIGKILL');
    await child.done.catch(() => undefined);
  });
  return child;
}

/** The approval code `understudy approve-code` gives for `challenge` and `decision` with the secret in `secretFile`. */
export async function approvalCodeFromCli(
  challenge: string,
  decision: string,
  secretFile: string,
): Promise<string> {
  const out = await exec(
    [
      process.execPath,
      '--import',
      'tsx',
      'src/cli/entry.ts',
      '--json',
      'approve-code',
      challenge,
      '--decision',
      decision,
      '--secret-file',
      secretFile,
    ],
    { cwd: repoRoot },
  );
  return (JSON.parse(out.stdout) as { code: string }).code;
}
