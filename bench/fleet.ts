/**
 * Benchmark: control-plane cost of a rollout wave on a real PostgreSQL 15 (TLS, client
 * certificates) with graphile-worker, for fleets of 1,000 and 10,000 hosts (one LC each) in one
 * run. Hosts beyond the polling agents exist as database rows (enrolled rows and roles), since
 * only the control plane is measured; `--agents` real agents (own certificates, fake host runner)
 * poll throughout and give the poll latency.
 *
 * Measures: time to plan a rollout (selection + waves), time to dispatch one wave of every host
 * (tick → every work row made by graphile-worker jobs), targets/s, rows and bytes per host, p99 of an
 * agent's poll. Target: linear or better from 1,000 to 10,000; a 1,000-host wave in under 10 s.
 *
 * Run as root: `npm run bench:fleet` (options: --sizes 1000,10000 --agents 10 --concurrency 4).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openStore } from '../src/store/index.ts';
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
  createRollout,
  enrolHost,
  freePort,
  issueCertificate,
  openPool,
  startCluster,
  startControlWorker,
  stopCluster,
  tickRollout,
} from '../src/fleet/index.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000' },
    agents: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '4' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const agentCount = Number(values.agents);

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fleet-bench-'));
fs.chmodSync(dir, 0o711);
const ca = await createCa(path.join(dir, 'ca'));
const cluster = await createCluster({ dir: path.join(dir, 'pg'), ca, port: await freePort() });
await startCluster(cluster);
const agents: FleetAgent[] = [];
try {
  const cert = await issueCertificate(ca, {
    outDir: path.join(dir, 'control'),
    name: 'control',
    commonName: controlRole,
    kind: 'client',
  });
  const control = { user: controlRole, certFile: cert.certFile, keyFile: cert.keyFile };
  const endpoint = await bootstrapControlDatabase(cluster, control, ca.certFile);
  const db = openPool(endpoint, control, 12);
  await db.query(
    `INSERT INTO fleet.patches (name, security, first_seen) VALUES ('openssl-3.0.15', true, now() - interval '30 days')`,
  );

  // Real agents: enrolled with their own certificates; their LCs are part of every fleet size.
  const pollMs: number[] = [];
  for (let i = 0; i < agentCount; i += 1) {
    const host = `agent-${String(i).padStart(3, '0')}`;
    const hostDir = path.join(dir, 'agents', host);
    fs.mkdirSync(hostDir, { recursive: true });
    const token = await createEnrolToken(db, { host });
    const keyFile = path.join(hostDir, 'agent.key');
    const csrPem = await createKeyAndCsr({ dir: hostDir }, { keyFile, commonName: host });
    const enrolled = await enrolHost(db, ca, { host, token, csrPem });
    fs.writeFileSync(path.join(hostDir, 'agent.crt'), enrolled.certPem);
    await db.query(`INSERT INTO fleet.lcs (host_id, lc, group_name) VALUES ($1, 'lc1', 'web')`, [host]);
    agents.push(
      new FleetAgent({
        host,
        endpoint,
        identity: { user: enrolled.role, certFile: path.join(hostDir, 'agent.crt'), keyFile },
        journal: openStore(path.join(hostDir, 'journal.db'), [agentJournalSchema]),
        runner: new FakeHostRunner({ lcs: [], runMs: 0 }),
        maxParallel: 1,
      }),
    );
  }
  let polling = true;
  const pollers = agents.map(async (agent) => {
    while (polling) {
      const t0 = performance.now();
      await agent.pollOnce();
      pollMs.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  const worker = await startControlWorker({
    db,
    tickMs: 60_000,
    pollIntervalMs: 100,
    concurrency: Number(values.concurrency),
  });
  const results: Record<string, number>[] = [];
  let made = agentCount;
  for (const size of sizes) {
    // Grow the fleet to `size` hosts: rows as enrolment makes them (host row + LC row; roles are
    // made at enrolment too and are created here in bulk).
    const t0 = performance.now();
    await db.query(
      `INSERT INTO fleet.hosts (id, role_name, cert_serial, enrolled_at)
       SELECT 'host-' || g, 'agent_host_' || g, to_hex(g), now() FROM generate_series($1::int, $2::int) g`,
      [made, size - 1],
    );
    await db.query(
      `INSERT INTO fleet.lcs (host_id, lc, group_name) SELECT 'host-' || g, 'lc1', 'web' FROM generate_series($1::int, $2::int) g`,
      [made, size - 1],
    );
    made = size;
    const enrolSeconds = (performance.now() - t0) / 1000;
    pollMs.length = 0;

    const p0 = performance.now();
    const rollout = await createRollout(
      db,
      {
        name: `bench-${size}`,
        patches: { securityOnly: true },
        canary: size,
        maxConcurrency: size,
        watchSeconds: 0,
      },
      new Date(),
    );
    const planSeconds = (performance.now() - p0) / 1000;
    const d0 = performance.now();
    await tickRollout(db, worker.queue, rollout.id, new Date());
    const queuedSeconds = (performance.now() - d0) / 1000;
    for (;;) {
      const n = await db.query<{ n: string }>('SELECT count(*) AS n FROM fleet.work WHERE rollout_id = $1', [
        rollout.id,
      ]);
      if (Number(n.rows[0]?.n) >= size) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const dispatchSeconds = (performance.now() - d0) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // a few polls after the wave
    const sizes = await db.query<{ bytes: string; rows: string }>(
      `SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes, sum(c.reltuples)::bigint AS rows
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname IN ('fleet', 'graphile_worker') AND c.relkind = 'r'`,
    );
    await db.query('ANALYZE');
    const counted = await db.query<{ rows: string }>(
      `SELECT (SELECT count(*) FROM fleet.hosts) + (SELECT count(*) FROM fleet.lcs) + (SELECT count(*) FROM fleet.work)
        + (SELECT count(*) FROM fleet.reports) + (SELECT count(*) FROM fleet.inventory) AS rows`,
    );
    const row = {
      hosts: size,
      fillSeconds: enrolSeconds,
      planSeconds,
      queueSeconds: queuedSeconds,
      dispatchSeconds,
      targetsPerSecond: size / dispatchSeconds,
      rowsPerHost: Number(counted.rows[0]?.rows) / size,
      bytesPerHost: Number(sizes.rows[0]?.bytes) / size,
      pollP50Ms: percentile(pollMs, 50),
      pollP99Ms: percentile(pollMs, 99),
      polls: pollMs.length,
    };
    results.push(row);
    // Finish this rollout so the next size measures a fresh wave.
    await db.query(`UPDATE fleet.rollouts SET state = 'stopped' WHERE id = $1`, [rollout.id]);
    await db.query(`UPDATE fleet.work SET state = 'cancelled' WHERE rollout_id = $1 AND state = 'queued'`, [
      rollout.id,
    ]);
  }
  polling = false;
  await Promise.all(pollers);
  await worker.stop();
  await db.end();

  const fmt = (n: number, d = 2): string => n.toFixed(d);
  console.log(
    `command: npm run bench:fleet -- --sizes ${values.sizes} --agents ${agentCount} --concurrency ${values.concurrency}`,
  );
  console.log('hosts   plan s  dispatch s  targets/s  rows/host  bytes/host  poll p50 ms  poll p99 ms');
  for (const r of results)
    console.log(
      `${String(r.hosts).padEnd(7)} ${fmt(r.planSeconds ?? 0).padStart(6)}  ${fmt(r.dispatchSeconds ?? 0).padStart(10)}  ${fmt(r.targetsPerSecond ?? 0, 0).padStart(9)}  ${fmt(r.rowsPerHost ?? 0, 1).padStart(9)}  ${fmt(r.bytesPerHost ?? 0, 0).padStart(10)}  ${fmt(r.pollP50Ms ?? 0, 1).padStart(11)}  ${fmt(r.pollP99Ms ?? 0, 1).padStart(11)}`,
    );
  const [small, big] = results;
  if (small && big) {
    const ratio = (big.dispatchSeconds ?? 0) / (small.dispatchSeconds ?? 1);
    const scale = (big.hosts ?? 1) / (small.hosts ?? 1);
    console.log(
      `dispatch grows ×${fmt(ratio)} for ×${fmt(scale, 0)} hosts: ${ratio <= scale * 1.1 ? 'linear or better' : 'WORSE than linear'}; ` +
        `${small.hosts}-host wave in ${fmt(small.dispatchSeconds ?? 0)} s: ${(small.dispatchSeconds ?? 99) < 10 ? 'under' : 'OVER'} the 10 s target`,
    );
  }
  console.log(JSON.stringify(results));
} finally {
  for (const a of agents) await a.stop().catch(() => undefined);
  await stopCluster(cluster);
  fs.rmSync(dir, { recursive: true, force: true });
}
