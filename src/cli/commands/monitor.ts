/** `understudy monitor run|status`: one poll now, and what the last polls did. */
import type { Command } from 'commander';

import { UnderstudyError, createLogger, type ErrorCode } from '../../core/index.ts';
import { createSmtpSender } from '../../mail/index.ts';
import {
  createMonitor,
  defaultConfigPath,
  loadMonitorConfig,
  realFetcher,
  safeUrl,
  type MonitorStatus,
} from '../../monitor/index.ts';
import type { ApiClient } from '../api-client.ts';
import { noManagedLcs } from '../../api/index.ts';
import { table, type CliContext } from '../context.ts';

function renderStatus(status: MonitorStatus): string {
  return [
    status.feeds.length === 0
      ? 'No feeds.'
      : table(
          ['FEED', 'KIND', 'LAST POLL', 'OUTCOME', 'FAILURES', 'NEXT POLL', 'REGISTERED', 'ERROR'],
          status.feeds.map((f) => [
            f.name,
            f.kind,
            f.lastPollAt?.slice(0, 19) ?? 'never',
            f.lastOutcome ?? '-',
            String(f.consecutiveFailures),
            f.nextPollAt?.slice(0, 19) ?? '-',
            String(f.registeredTotal),
            f.lastError ? `${f.lastErrorCode}: ${f.lastError.slice(0, 100)}` : '',
          ]),
        ),
    `Pending notifications: ${status.pendingNotifications}`,
    ...status.feeds.map((f) => `  ${f.name}: ${safeUrl(f.url)}`),
  ].join('\n');
}

/** `monitor run` on the daemon: its monitor polls now, with its configuration and mailer. */
async function pollOverApi(ctx: CliContext, api: ApiClient, feed: string | undefined): Promise<void> {
  const { results } = await api.request<{
    results: {
      feed: string;
      outcome: string;
      registered: string[];
      error: { code: string; message: string } | null;
    }[];
  }>('POST', '/v1/monitor/poll', feed ? { feed } : {});
  const failed = results.filter((r) => r.outcome === 'failed' || r.outcome === 'partial');
  if (!(ctx.json() && failed.length > 0))
    ctx.print({ results }, () =>
      results.length === 0
        ? 'No feeds.'
        : results
            .map(
              (r) =>
                `${r.feed}: ${r.outcome}, ${r.registered.length} new patch(es)${r.registered.length ? `: ${r.registered.join(', ')}` : ''}${r.error ? `\n  ${r.error.code}: ${r.error.message}` : ''}`,
            )
            .join('\n'),
    );
  const first = failed[0];
  if (first?.error)
    throw new UnderstudyError(
      first.error.code as ErrorCode,
      `${failed.length} feed(s) did not poll cleanly (first: ${first.feed}: ${first.error.message})`,
      {
        hint: 'Nothing bad was registered; the monitor retries with backoff. `understudy monitor status` shows each feed.',
        details: { results },
      },
    );
}

export function registerMonitorCommands(program: Command, ctx: CliContext): void {
  const monitor = program
    .command('monitor')
    .description('the patch monitor: poll feeds, mail administrators');

  monitor
    .command('run')
    .description('poll every feed (or one) now, register new patches and mail the administrators')
    .option('--feed <name>', 'only this feed')
    .option('--config <file>', 'monitor configuration (default <state-dir>/monitor.yaml)')
    .action(async (o: { feed?: string; config?: string }) => {
      const api = ctx.api();
      if (api) {
        if (o.config)
          throw new UnderstudyError(
            'INVALID_ARGUMENT',
            '--config cannot go with --api: the daemon polls with its own configuration',
          );
        await pollOverApi(ctx, api, o.feed);
        return;
      }
      const config = loadMonitorConfig(o.config ?? defaultConfigPath(ctx.stateDir()), {
        required: o.config !== undefined,
      });
      const { db, catalogue } = ctx.openApp();
      const logger = createLogger({
        pretty: process.stderr.isTTY && !ctx.json(),
        level: process.env.UNDERSTUDY_LOG_LEVEL ?? 'warn',
      });
      const m = createMonitor({
        db,
        catalogue,
        config,
        stateDir: ctx.stateDir(),
        fetcher: realFetcher,
        managedLcs: noManagedLcs,
        mailer: config.mail ? createSmtpSender(config.mail.smtp) : null,
        logger,
      });
      try {
        const results = await m.pollNow(o.feed);
        const data = results.map((r) => ({
          feed: r.feed,
          outcome: r.outcome,
          registered: r.registeredNames,
          failures: r.failures,
        }));
        if (!(ctx.json() && results.some((r) => r.outcome === 'failed' || r.outcome === 'partial')))
          ctx.print({ results: data }, () =>
            results.length === 0
              ? 'No feeds.'
              : results
                  .map((r) =>
                    [
                      `${r.feed}: ${r.outcome}, ${r.registered} new patch(es)${r.registeredNames.length ? `: ${r.registeredNames.join(', ')}` : ''}`,
                      ...r.failures.map((f) => `  ${f.code}: ${f.message}`),
                    ].join('\n'),
                  )
                  .join('\n'),
          );
        const failed = results.filter((r) => r.outcome === 'failed' || r.outcome === 'partial');
        const first = failed[0]?.error;
        if (first) {
          throw new UnderstudyError(
            first.code as ErrorCode,
            `${failed.length} feed(s) did not poll cleanly (first: ${failed[0]?.feed}: ${first.message})`,
            {
              hint: 'Nothing bad was registered; the monitor retries with backoff. `understudy monitor status` shows each feed.',
              details: { results: data },
            },
          );
        }
      } finally {
        await m.stop();
        db.close();
      }
    });

  monitor
    .command('status')
    .description('last poll per feed, errors, next poll')
    .action(async () => {
      const api = ctx.api();
      if (api) {
        const status = await api.request<MonitorStatus>('GET', '/v1/monitor/status');
        ctx.print(status, () => renderStatus(status));
        return;
      }
      const { db, catalogue } = ctx.openApp();
      try {
        const m = createMonitor({
          db,
          catalogue,
          config: loadMonitorConfig(defaultConfigPath(ctx.stateDir())),
          stateDir: ctx.stateDir(),
          fetcher: realFetcher,
          managedLcs: noManagedLcs,
          logger: createLogger({ level: 'silent' }),
        });
        const status = m.status();
        ctx.print(status, () => renderStatus(status));
      } finally {
        db.close();
      }
    });
}
