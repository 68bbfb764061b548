/**
 * A fleet of real hosts for the fleet's end-to-end tests. The control plane (PostgreSQL 15 with TLS,
 * graphile-worker, the HTTPS enrolment endpoint) listens on an address in 198.18.0.0/15 on a bridge
 * of the run; each host on this machine has its own state directory, pools, bridge, LC pair (busybox
 * image, namespace driver, LC1 serving, LC2 standby), client and patch, enrols with `understudy agent
 * enrol` and runs `understudy agent run --group web` as a child process. When startRealFleet returns,
 * every agent has reported its inventory, a real load (100 requests/s) runs on each served address
 * and the control plane's scheduler ticks every 500 ms.
 *
 * Teardown, even after a failure: the agents end (SIGTERM by pid, their runs finish; SIGKILL after
 * 2 minutes), the loads stop, the hosts go; then the scheduler and the enrolment endpoint stop, the
 * server stops and the bridge goes.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { sleep, spawnProcess, waitFor, type SpawnedProcess } from '../../../src/core/index.ts';
import { assetsDir } from '../../../src/images/index.ts';
import {
  createEnrolToken,
  startControlWorker,
  startEnrolServer,
  syncInventory,
  type ControlWorker,
} from '../../../src/fleet/index.ts';
import type { ClientLoad, ClientLoadReport } from '../../../src/demo/index.ts';
import { createControlNetwork, startFleetDb, type FleetDb } from '../../helpers/fleet-fixture.ts';
import { createRunFixture, type RunFixture } from '../run/run-fixture.ts';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const cliEntry = path.join(repoRoot, 'src/cli/entry.ts');

export interface RealAgent {
  host: string;
  f: RunFixture;
  proc?: SpawnedProcess;
  /** The agent process's stderr, line by line. */
  log: string[];
  load?: ClientLoad;
}

export interface RealFleet {
  fx: FleetDb;
  /** In the order of the options' hosts. */
  agents: RealAgent[];
  worker: ControlWorker;
  /** The last 30 lines of each agent's stderr, for assertion messages. */
  diagnose(): string;
  /** Stops each host's load and returns its report, in the agents' order. */
  stopLoads(): Promise<ClientLoadReport[]>;
}

export interface RealFleetOptions {
  hosts: readonly string[];
  /** Gives a host its patch, marked for lc1's next run (default: the version patch 1.0.0 → 1.0.1, demo-1.0.1). */
  patch?: (host: string, f: RunFixture) => Promise<unknown>;
}

export async function startRealFleet(
  t: { after: (fn: () => unknown) => void },
  options: RealFleetOptions,
): Promise<RealFleet> {
  const agents: RealAgent[] = [];
  // Registered before the control plane's teardown so it runs first: agents end (their runs
  // finish), loads stop, hosts go.
  t.after(async () => {
    for (const a of agents) {
      if (!a.proc || a.proc.child.exitCode !== null) continue;
      a.proc.child.kill('SIGTERM');
      const ended = await Promise.race([a.proc.done.then(() => true), sleep(120_000).then(() => false)]);
      if (!ended) a.proc.child.kill('SIGKILL');
    }
    for (const a of agents) await a.load?.stop().catch(() => undefined);
    for (const a of agents) await a.f.dispose().catch((e: unknown) => console.error(e));
  });
  const net = await createControlNetwork();
  const fx = await startFleetDb(t, { network: net });
  const enrol = await startEnrolServer({
    db: fx.db,
    ca: fx.ca,
    host: net.address,
    database: { host: fx.endpoint.host, port: fx.endpoint.port, database: fx.endpoint.database },
    tlsDir: path.join(fx.dir, 'enrol-tls'),
  });
  fx.defer(() => enrol.close());

  for (const host of options.hosts) {
    const f = await createRunFixture();
    agents.push({ host, f, log: [] });
    await (options.patch ?? ((_host, fixture) => fixture.addVersionPatch()))(host, f);
    const token = await createEnrolToken(fx.db, { host });
    await f.t.cli(['agent', 'enrol', host, token, '--url', enrol.url, '--ca', fx.ca.certFile]);
  }
  for (const a of agents) {
    a.proc = spawnProcess(
      [
        process.execPath,
        '--import',
        'tsx',
        cliEntry,
        '--state-dir',
        a.f.t.stateDir,
        'agent',
        'run',
        '--poll',
        '500',
        '--group',
        'web',
        '--scan-database',
        path.join(assetsDir, 'clamav/eicar-test.hdb'),
      ],
      { cwd: repoRoot },
    );
    a.proc.child.stderr?.on('data', (c: Buffer) => a.log.push(...c.toString('utf8').split('\n')));
  }
  const diagnose = (): string =>
    agents.map((a) => `--- ${a.host}\n${a.log.filter(Boolean).slice(-30).join('\n')}`).join('\n');

  // Each agent reports its LCs and pending patches; the control plane folds them in.
  const known = await waitFor(
    async () => ((await syncInventory(fx.db)) >= agents.length ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  assert.ok(known, `the ${agents.length} agents reported their inventory\n${diagnose()}`);

  for (const a of agents) a.load = await a.f.load(100);
  const worker = await startControlWorker({ db: fx.db, tickMs: 500, pollIntervalMs: 200 });
  fx.defer(() => worker.stop());
  return {
    fx,
    agents,
    worker,
    diagnose,
    async stopLoads() {
      const reports: ClientLoadReport[] = [];
      for (const a of agents) reports.push(await (a.load as ClientLoad).stop());
      for (const a of agents) a.load = undefined;
      return reports;
    },
  };
}
