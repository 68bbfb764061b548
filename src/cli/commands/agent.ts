/**
 * `understudy agent …`: the fleet agent of this host. `enrol` makes the host's key and CSR and
 * enrols over the control plane's HTTPS endpoint with a one-time token; `run` takes this host's
 * work from the control plane (PostgreSQL, mutual TLS, row-level security) and runs each item as
 * the host's own durable patch run (or rollback), reporting the run's outcome, its id and figures,
 * and the host's inventory; each poll is the host's heartbeat.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { UnderstudyError, createLogger, requireRoot } from '../../core/index.ts';

import { isSwitchMethod, type SwitchMethod } from '../../switch/index.ts';
import { openAgentStores } from '../../app/index.ts';
import {
  AppHostRunner,
  FleetAgent,
  agentJournalSchema,
  agentRunsSchema,
  enrolOverHttps,
  readAgentConfig,
  type AgentRunOptions,
} from '../../fleet/index.ts';
import type { CliContext } from '../context.ts';

const defaultAgentDir = (stateDir: string): string => path.join(stateDir, 'agent');

function parseLabels(values: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values ?? []) {
    const at = value.indexOf('=');
    if (at <= 0)
      throw new UnderstudyError('INVALID_ARGUMENT', `--label "${value}" is not key=value`, {
        hint: 'Pass --label env=prod (repeat for more labels).',
      });
    labels[value.slice(0, at)] = value.slice(at + 1);
  }
  return labels;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerAgentCommands(program: Command, ctx: CliContext): void {
  const agent = program.command('agent').description("this host's fleet agent");

  agent
    .command('enrol <host> <token>')
    .description(
      "enrol this host (its name in the fleet) with its one-time token over the control plane's HTTPS endpoint",
    )
    .requiredOption('--url <url>', 'the enrolment endpoint, e.g. https://198.18.0.1:8443')
    .requiredOption('--ca <file>', "the fleet CA's certificate (ca.crt), to verify the endpoint")
    .option('--dir <dir>', "the agent's directory (default: <state dir>/agent)")
    .action(async (host: string, token: string, o: { url: string; ca: string; dir?: string }) => {
      const dir = path.resolve(o.dir ?? defaultAgentDir(ctx.stateDir()));
      const config = await enrolOverHttps({ url: o.url, caFile: o.ca, host, token, dir });
      ctx.print(
        { host: config.host, role: config.identity.user, endpoint: config.endpoint, dir },
        () =>
          `${config.host} enrolled as ${config.identity.user}; PostgreSQL at ${config.endpoint.host}:${config.endpoint.port} (certificate in ${dir})`,
      );
    });

  agent
    .command('run')
    .description("take this host's work from the control plane and run it, until SIGINT/SIGTERM")
    .option('--dir <dir>', "the agent's directory (default: <state dir>/agent)")
    .option('--poll <ms>', 'how often to ask for work (each ask is also the heartbeat)', '2000')
    .option('--group <group>', "the group of this host's LCs", 'default')
    .option('--label <key=value>', "a label of this host's LCs (repeatable)", collect)
    .option('--method <method>', 'switch method: instant | move-nic | swap-address', 'instant')
    .option('--boot-timeout <ms>', 'how long a standby may take to patch and boot', '120000')
    .option('--skip-scan', 'do not scan the system disk (recorded in each run)')
    .option('--scan-database <path>', 'ClamAV signature database for the scan')
    .option('--stateless', 'the application disks hold no data to carry over at the switch')
    .action(
      async (o: {
        dir?: string;
        poll: string;
        group: string;
        label?: string[];
        method: string;
        bootTimeout: string;
        skipScan?: boolean;
        scanDatabase?: string;
        stateless?: boolean;
      }) => {
        requireRoot('the fleet agent (it drives patch runs)');
        if (!isSwitchMethod(o.method))
          throw new UnderstudyError(
            'INVALID_ARGUMENT',
            `--method: "${o.method}" is not one of instant, move-nic, swap-address`,
          );
        const dir = path.resolve(o.dir ?? defaultAgentDir(ctx.stateDir()));
        const config = readAgentConfig(dir);
        const logger = createLogger({ pretty: false, level: process.env.UNDERSTUDY_LOG_LEVEL ?? 'warn' });
        const runOptions: AgentRunOptions = {
          method: o.method as SwitchMethod,
          bootTimeoutMs: Number(o.bootTimeout),
          skipScan: o.skipScan === true,
          ...(o.scanDatabase ? { scanDatabase: o.scanDatabase } : {}),
          ...(o.stateless ? { stateful: false } : {}),
        };
        const app = ctx.openApp();
        const stores = openAgentStores(dir, { journal: agentJournalSchema, runs: agentRunsSchema });
        const runner = new AppHostRunner({
          app,
          runs: stores.runs,
          runOptions,
          group: o.group,
          labels: parseLabels(o.label),
          logger,
          onEvent: (e) => {
            if (e.state !== 'note' || e.message)
              ctx.progress(`run ${e.runId} ${e.step}: ${e.state}${e.message ? ` ${e.message}` : ''}`);
          },
        });
        const fleetAgent = new FleetAgent({
          host: config.host,
          endpoint: config.endpoint,
          identity: config.identity,
          journal: stores.journal,
          runner,
          pollMs: Number(o.poll),
          onError: (error) => ctx.progress(`agent ${config.host}: ${(error as Error).message}`),
          onOutcome: (workId, outcome) =>
            ctx.progress(`work ${workId}: ${outcome.outcome} (${JSON.stringify(outcome.detail)})`),
        });
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        process.once('SIGTERM', () => stop.abort());
        fleetAgent.start();
        ctx.progress(
          `agent ${config.host} polling ${config.endpoint.host}:${config.endpoint.port} every ${o.poll} ms`,
        );
        await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve()));
        ctx.progress(`agent ${config.host} stopping: runs in progress finish first`);
        await fleetAgent.stop();
        runner.close();
        app.close();
      },
    );
}
