/**
 * Why one graphile-worker job per host made a wave's dispatch O(n²): the plan of graphile-worker's
 * job fetch (its `get_job` query, as graphile-worker 0.17 sends it with no named queues in use)
 * right after `--jobs` jobs were added to a fresh job table, and after ANALYZE. Until the table is
 * analysed, the planner takes it for nearly empty and fetches each job with a sequential scan and
 * a sort of every queued (and dead) job; after, with an index scan of `jobs_main_index`.
 *
 * Run as root: `node --import tsx bench/fleet-job-plan.ts --jobs 10000`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Logger, makeWorkerUtils } from 'graphile-worker';
import {
  bootstrapControlDatabase,
  controlRole,
  createCa,
  createCluster,
  freePort,
  issueCertificate,
  openPool,
  startCluster,
  stopCluster,
} from '../src/fleet/index.ts';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '10000' } } });
const jobs = Number(values.jobs);

const getJob = `with j as (
  select jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    from graphile_worker._private_jobs as jobs
    where jobs.is_available = true and run_at <= now() and task_id = any($2::int[])
    and (jobs.job_queue_id is null or jobs.job_queue_id in (
      select id from graphile_worker._private_job_queues as job_queues
      where job_queues.is_available = true for update skip locked))
    order by priority asc, run_at asc limit 1 for update skip locked
), q as (
  update graphile_worker._private_job_queues as job_queues set locked_by = $1::text, locked_at = now()
  from j where job_queues.id = j.job_queue_id)
update graphile_worker._private_jobs as jobs
  set attempts = jobs.attempts + 1, locked_by = $1::text, locked_at = now()
  from j where jobs.id = j.id returning jobs.id`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-fleet-plan-'));
fs.chmodSync(dir, 0o711);
const ca = await createCa(path.join(dir, 'ca'));
const cluster = await createCluster({ dir: path.join(dir, 'pg'), ca, port: await freePort() });
await startCluster(cluster);
try {
  const cert = await issueCertificate(ca, {
    outDir: path.join(dir, 'control'),
    name: 'control',
    commonName: controlRole,
    kind: 'client',
  });
  const control = { user: controlRole, certFile: cert.certFile, keyFile: cert.keyFile };
  const endpoint = await bootstrapControlDatabase(cluster, control, ca.certFile);
  const db = openPool(endpoint, control, 2);
  const utils = await makeWorkerUtils({ pgPool: db, logger: new Logger(() => () => undefined) });
  await utils.migrate();
  await utils.addJobs(
    Array.from({ length: jobs }, (_, i) => ({
      identifier: 'fleet_dispatch',
      payload: { i },
      jobKey: `k${i}`,
    })),
  );
  const task = await db.query<{ id: number }>(
    `SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'fleet_dispatch'`,
  );
  const explain = async (label: string): Promise<void> => {
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${getJob}`,
        ['plan', [task.rows[0]?.id]],
      );
      await client.query('ROLLBACK');
      const lines = plan.rows.map((r) => r['QUERY PLAN']);
      const scan = lines.find((l) => /Scan .*on _private_jobs jobs_1/.test(l))?.trim();
      const time = lines.find((l) => l.startsWith('Execution Time'));
      console.log(`${label}: ${scan ?? '?'}; ${time ?? '?'}`);
    } finally {
      client.release();
    }
  };
  await explain(`${jobs} jobs queued, table not analysed`);
  await db.query('ANALYZE graphile_worker._private_jobs');
  await explain(`${jobs} jobs queued, after ANALYZE`);
  await utils.release();
  await db.end();
} finally {
  await stopCluster(cluster);
  fs.rmSync(dir, { recursive: true, force: true });
}
