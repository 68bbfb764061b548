/**
 * `understudy control …`: the fleet's control plane. `ca` makes the fleet CA; `init` makes a
 * PostgreSQL 15 cluster of its own (TLS, client certificates) with the control plane's role and
 * schema; `start`/`stop` run it; `token` makes a host's one-time enrolment token; `revoke` revokes
 * a host's certificate; `compliance` exports per-LC or per-group compliance as JSON or CSV; `run`
 * runs the scheduler (graphile-worker) until interrupted. Everything lives in one directory
 * (--dir), described by its control.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { UnderstudyError, createLogger } from '../../core/index.ts';
import { createImapReader, createSmtpSender } from '../../mail/index.ts';
import { loadMonitorConfig } from '../../monitor/index.ts';
import {
  bootstrapControlDatabase,
  getRollout,
  loadWork,
  openJobQueue,
  rolloutHistory,
  rolloutSteering,
  type RolloutSteering,
  complianceCsv,
  controlRole,
  createCa,
  createCluster,
  createEnrolToken,
  freePort,
  groupCompliance,
  groupComplianceCsv,
  installCrl,
  issueCertificate,
  lcCompliance,
  openCa,
  openPool,
  revokeHost,
  startCluster,
  startControlWorker,
  stopCluster,
  syncInventory,
  startEnrolServer,
  startRolloutApprovals,
  type EnrolServer,
  type RolloutApprovals,
  type ClientIdentity,
  type DbEndpoint,
  type PgCluster,
} from '../../fleet/index.ts';
import type { CliContext } from '../context.ts';

interface ControlFile {
  endpoint: DbEndpoint;
  identity: ClientIdentity;
  cluster?: PgCluster;
}

/** The control plane's directory description (control.json); FLEET_NOT_FOUND when it was not made. */
export function readControl(dir: string): ControlFile {
  const file = path.join(path.resolve(dir), 'control.json');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ControlFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UnderstudyError('FLEET_NOT_FOUND', `${file} does not exist`, {
        hint: 'Make the control plane first: `understudy control init --dir <dir>`.',
      });
    throw error;
  }
}

async function withDb<T>(
  dir: string,
  fn: (db: ReturnType<typeof openPool>, control: ControlFile) => Promise<T>,
): Promise<T> {
  const control = readControl(dir);
  const db = openPool(control.endpoint, control.identity, 4);
  try {
    return await fn(db, control);
  } finally {
    await db.end();
  }
}

/**
 * Runs `fn` with the steering of rollouts over the control plane's database and job queue; the
 * actions are audited under the local user's name, from the CLI.
 */
async function withSteering<T>(
  dir: string,
  fn: (steering: RolloutSteering, operator: string) => Promise<T>,
): Promise<T> {
  return withDb(dir, async (db) => {
    const jobs = await openJobQueue(db);
    try {
      return await fn(rolloutSteering({ db, jobs, via: 'cli' }), os.userInfo().username);
    } finally {
      await jobs.release();
    }
  });
}

export function registerControlCommands(program: Command, ctx: CliContext): void {
  const control = program.command('control').description('the fleet control plane on PostgreSQL');
  const dirOption = ['--dir <dir>', 'control plane directory', '/var/lib/understudy/control'] as const;

  control
    .command('ca')
    .description('make the fleet certificate authority (ca.key, ca.crt, CRL) in <dir>/ca')
    .option(...dirOption)
    .action(async (o: { dir: string }) => {
      const ca = await createCa(path.join(o.dir, 'ca'));
      ctx.print(ca, () => `fleet CA in ${ca.dir} (certificate ${ca.certFile})`);
    });

  control
    .command('init')
    .description(
      'make a PostgreSQL 15 cluster with TLS for the control plane, its role and schema, and start it',
    )
    .option(...dirOption)
    .option('--host <address>', 'the address PostgreSQL listens on (agents connect to it)', '127.0.0.1')
    .option('--port <port>', 'TCP port (default: a free one)')
    .action(async (o: { dir: string; host: string; port?: string }) => {
      const dir = path.resolve(o.dir);
      const ca = openCa(path.join(dir, 'ca'));
      const cluster = await createCluster({
        dir: path.join(dir, 'pg'),
        ca,
        host: o.host,
        port: o.port ? Number(o.port) : await freePort(),
      });
      await startCluster(cluster);
      const cert = await issueCertificate(ca, {
        outDir: path.join(dir, 'control'),
        name: 'control',
        commonName: controlRole,
        kind: 'client',
      });
      const identity: ClientIdentity = { user: controlRole, certFile: cert.certFile, keyFile: cert.keyFile };
      const endpoint = await bootstrapControlDatabase(cluster, identity, ca.certFile);
      fs.writeFileSync(
        path.join(dir, 'control.json'),
        JSON.stringify({ endpoint, identity, cluster }, null, 2),
      );
      ctx.print(
        { endpoint },
        () =>
          `control plane on ${endpoint.host}:${endpoint.port} (database ${endpoint.database}, TLS, client certificates)`,
      );
    });

  control
    .command('start')
    .description("start the control plane's own PostgreSQL cluster")
    .option(...dirOption)
    .action(async (o: { dir: string }) => {
      const { cluster } = readControl(o.dir);
      if (!cluster) throw new UnderstudyError('FLEET_NOT_FOUND', `${o.dir} uses an external PostgreSQL`);
      const pid = await startCluster(cluster);
      ctx.print({ pid }, () => `PostgreSQL started (pid ${pid})`);
    });

  control
    .command('stop')
    .description("stop the control plane's own PostgreSQL cluster")
    .option(...dirOption)
    .action(async (o: { dir: string }) => {
      const { cluster } = readControl(o.dir);
      if (cluster) await stopCluster(cluster);
      ctx.print({ stopped: true }, () => 'PostgreSQL stopped');
    });

  control
    .command('token <host>')
    .description('make a one-time enrolment token for a host (printed once)')
    .option(...dirOption)
    .option('--ttl <minutes>', 'minutes the token stays valid', '60')
    .action(async (host: string, o: { dir: string; ttl: string }) => {
      const token = await withDb(o.dir, (db) => createEnrolToken(db, { host, ttlMinutes: Number(o.ttl) }));
      ctx.print(
        { host, token },
        () => `${token}\n(one-time enrolment token for ${host}; it is not shown again)`,
      );
    });

  control
    .command('revoke <host>')
    .description("revoke a host's certificate: refused from now on, its sessions ended")
    .option(...dirOption)
    .action(async (host: string, o: { dir: string }) => {
      const result = await withDb(o.dir, async (db, c) => {
        const ca = openCa(path.join(o.dir, 'ca'));
        const revoked = await revokeHost(db, ca, host);
        if (c.cluster) await installCrl(c.cluster, ca);
        else await db.query('SELECT pg_reload_conf()');
        return revoked;
      });
      ctx.print({ host, ...result }, () => `certificate ${result.serial} of ${host} revoked`);
    });

  control
    .command('compliance')
    .description('pending security updates with age, last run and result, time since last patch')
    .option(...dirOption)
    .option('--by <what>', 'lc | group', 'lc')
    .option('--csv', 'CSV instead of JSON')
    .action(async (o: { dir: string; by: string; csv?: boolean }) => {
      if (o.by !== 'lc' && o.by !== 'group')
        throw new UnderstudyError('INVALID_ARGUMENT', `--by: "${o.by}" is not one of lc, group`);
      const lcs = await withDb(o.dir, async (db) => {
        await syncInventory(db);
        return lcCompliance(db);
      });
      const data = o.by === 'lc' ? lcs : groupCompliance(lcs);
      if (o.csv)
        process.stdout.write(o.by === 'lc' ? complianceCsv(lcs) : groupComplianceCsv(groupCompliance(lcs)));
      else process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    });

  const rollout = control
    .command('rollout')
    .description(
      'rollouts: create, show, pause, resume, stop, roll back a wave or one LC, issue an approval challenge',
    );
  rollout
    .command('create <spec>')
    .description(
      'create a rollout from a JSON file (patches, targets, windows, canary, maxConcurrency, maxErrors, watchSeconds, requireApproval)',
    )
    .option(...dirOption)
    .action(async (specFile: string, o: { dir: string }) => {
      const spec: unknown = JSON.parse(fs.readFileSync(specFile, 'utf8'));
      const made = await withSteering(o.dir, (steering, operator) => steering.create(spec, operator));
      ctx.print(
        made,
        () =>
          `rollout ${made.id} (${made.name}): ${made.patchSet.join(', ')} to ${made.targets} LCs in ${made.waves} waves (${made.state})`,
      );
    });
  rollout
    .command('show <id>')
    .description("a rollout with the state of each target and its record (operators' actions, approvals)")
    .option(...dirOption)
    .action(async (id: string, o: { dir: string }) => {
      const shown = await withDb(o.dir, async (db) => ({
        ...(await getRollout(db, Number(id))),
        work: Object.fromEntries(await loadWork(db, Number(id))),
        rollbacks: Object.fromEntries(await loadWork(db, Number(id), 'rollback')),
        history: await rolloutHistory(db, Number(id)),
      }));
      ctx.print(
        shown,
        () =>
          `rollout ${shown.id} ${shown.name}: ${shown.state}${shown.reason ? ` (${shown.reason})` : ''}\n${Object.entries(
            shown.work,
          )
            .map(
              ([k, w]) =>
                `  ${k}: ${w.state}${shown.rollbacks[k] ? ` (rollback ${shown.rollbacks[k].state})` : ''}`,
            )
            .join('\n')}\n${shown.history
            .map((h) => `  ${h.at} ${h.actor} ${h.action} ${h.outcome}`)
            .join('\n')}`,
      );
    });
  for (const command of ['pause', 'resume', 'stop'] as const)
    rollout
      .command(`${command} <id>`)
      .description(`${command} a rollout`)
      .option(...dirOption)
      .action(async (id: string, o: { dir: string }) => {
        const done = await withSteering(o.dir, (steering, operator) =>
          steering.command(Number(id), command, operator),
        );
        ctx.print(done, () => `rollout ${id}: ${done.state}`);
      });
  rollout
    .command('rollback-wave <id> <wave>')
    .description('roll back every switched LC of a wave (1 = the canary); the rollout pauses')
    .option(...dirOption)
    .action(async (id: string, wave: string, o: { dir: string }) => {
      const done = await withSteering(o.dir, (steering, operator) =>
        steering.rollbackWave(Number(id), Number(wave), operator),
      );
      ctx.print(done, () => `rollout ${id} wave ${wave}: rolling back ${done.rollingBack} LCs`);
    });
  rollout
    .command('rollback-lc <id> <host> <lc>')
    .description(
      "roll one switched LC of a rollout back to its unpatched original, also after the rollout ended (the rollout's record shows it)",
    )
    .option(...dirOption)
    .action(async (id: string, host: string, lc: string, o: { dir: string }) => {
      const done = await withSteering(o.dir, (steering, operator) =>
        steering.rollbackLc(Number(id), { host, lc }, operator),
      );
      ctx.print(done, () => `rollout ${id}: rolling back ${host}/${lc} (work ${done.workId})`);
    });
  rollout
    .command('challenge <id>')
    .description(
      "issue an administrator a new approval challenge for a rollout awaiting approval (the mail expired or was lost): the earlier one's code is refused from now on; `control run --mail-config` mails it",
    )
    .requiredOption('--admin <name>', 'the administrator (as named in the administrators section)')
    .option('--ttl <hours>', 'hours the challenge stays valid', '24')
    .option(...dirOption)
    .action(async (id: string, o: { dir: string; admin: string; ttl: string }) => {
      const hours = Number(o.ttl);
      if (!(hours > 0))
        throw new UnderstudyError('INVALID_ARGUMENT', `--ttl must be a positive number of hours`);
      const issued = await withSteering(o.dir, (steering, operator) =>
        steering.reissueChallenge(Number(id), { admin: o.admin, ttlMs: hours * 3600_000 }, operator),
      );
      ctx.print(
        issued,
        () =>
          `Challenge: ${issued.challenge}\n(for ${issued.admin}, rollout ${id}, until ${issued.expiresAt}; ${issued.replaced} earlier challenge(s) replaced)\nThe code: understudy approve-code ${issued.challenge} --decision "approve all"`,
      );
    });

  control
    .command('run')
    .description('run the scheduler (graphile-worker) and fold agent inventory in, until interrupted')
    .option(...dirOption)
    .option(
      '--enrol-listen <address:port>',
      'serve enrolment over HTTPS (server certificate of the fleet CA) on this address and port',
    )
    .option('--tick <ms>', 'how often a rollout waiting on agents is looked at again', '5000')
    .option(
      '--mail-config <file>',
      'ask for and read rollout approvals by mail: the mail and administrators of this monitor.yaml-format file (IMAP required)',
    )
    .action(async (o: { dir: string; enrolListen?: string; tick: string; mailConfig?: string }) => {
      const c = readControl(o.dir);
      const mail = o.mailConfig ? loadMonitorConfig(o.mailConfig, { required: true }) : null;
      if (mail && !mail.mail?.imap)
        throw new UnderstudyError(
          'CONFIG_INVALID',
          `${o.mailConfig} has no mail.imap: rollout approvals are read from an IMAP mailbox`,
          { hint: 'Add mail.smtp, mail.imap (with trustedAuthServId) and administrators to the file.' },
        );
      const db = openPool(c.endpoint, c.identity, 8);
      const worker = await startControlWorker({ db, tickMs: Number(o.tick) });
      ctx.progress(`control plane scheduling on ${c.endpoint.host}:${c.endpoint.port}; Ctrl-C to stop`);
      let approvals: RolloutApprovals | undefined;
      if (mail?.mail?.imap) {
        approvals = startRolloutApprovals({
          db,
          admins: mail.administrators,
          from: mail.mail.from,
          mailer: createSmtpSender(mail.mail.smtp),
          mailbox: createImapReader(mail.mail.imap),
          trustedAuthServId: mail.mail.imap.trustedAuthServId,
          challengeTtlMs: mail.approval.challengeTtlHours * 3600_000,
          codeWindowMinutes: mail.approval.codeWindowMinutes,
          maxFailedAttempts: mail.approval.maxFailedAttempts,
          pollMs: mail.mail.imap.pollSeconds * 1000,
          onDecided: (id) => worker.kick(id),
          logger: createLogger({ pretty: false, name: 'understudy-control' }),
        });
        ctx.progress(`rollout approvals by mail from ${mail.mail.from}`);
      }
      let enrol: EnrolServer | undefined;
      if (o.enrolListen) {
        const at = o.enrolListen.lastIndexOf(':');
        if (at <= 0)
          throw new UnderstudyError(
            'INVALID_ARGUMENT',
            `--enrol-listen "${o.enrolListen}" is not address:port`,
          );
        enrol = await startEnrolServer({
          db,
          ca: openCa(path.join(o.dir, 'ca')),
          host: o.enrolListen.slice(0, at),
          port: Number(o.enrolListen.slice(at + 1)),
          database: { host: c.endpoint.host, port: c.endpoint.port, database: c.endpoint.database },
          tlsDir: path.join(o.dir, 'enrol-tls'),
        });
        ctx.progress(`enrolment on ${enrol.url}/v1/enrol`);
      }
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      while (!stop.signal.aborted) {
        await syncInventory(db);
        await new Promise((r) => setTimeout(r, 5_000));
      }
      await enrol?.close();
      await approvals?.stop();
      await worker.stop();
      await db.end();
    });
}
