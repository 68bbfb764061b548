/** `understudy monitor run|status`: one poll now, and what the last polls did. */
import type { Command } from 'commander';
import { openApp } from '../../app/index.ts';
import { UnderstudyError, createLogger, type ErrorCode } from '../../core/index.ts';
import { createSmtpSender } from '../../mail/index.ts';
import {
  createMonitor,
  defaultConfigPath,
  loadMonitorConfig,
  realFetcher,
  safeUrl,
} from '../../monitor/index.ts';
import { noManagedLcs } from '../../api/index.ts';
import { table, type CliContext } from '../context.ts';

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
      const config = loadMonitorConfig(o.config ?? defaultConfigPath(ctx.stateDir()), {
        required: o.config !== undefined,
      });
      const { db, catalogue } = openApp(ctx.stateDir());
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
    .action(() => {
      const { db, catalogue } = openApp(ctx.stateDir());
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
        ctx.print(status, () =>
          [
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
          ].join('\n'),
        );
      } finally {
        db.close();
      }
    });
}
