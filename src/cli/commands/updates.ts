/**
 * `understudy updates <lc> [--apply]`: the Debian updates pending for an LC, computed from its own dpkg
 * status (read from its system disk, inside its root) against the verified indexes of the apt feeds;
 * with --apply, exactly those .deb files are registered and marked for the LC's next patch run.
 */
import type { Command } from 'commander';
import { lcPendingUpdates } from '../../app/index.ts';
import { describeUpgradeReason, type PendingUpdates } from '../../monitor/index.ts';
import { table, type CliContext } from '../context.ts';

function collect(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

function render(r: PendingUpdates, apply: boolean): string {
  if (r.updates.length === 0)
    return `${r.lc}: no pending updates in ${r.feeds.join(', ')}${r.held.length ? ` (held: ${r.held.join(', ')})` : ''}`;
  const lines = [
    table(
      ['PACKAGE', 'INSTALLED', 'CANDIDATE', 'SOURCE', 'FEED', 'WHY'],
      r.updates.map((u) => [
        u.package,
        u.installed ?? '(new)',
        u.candidate,
        u.source,
        u.feed,
        u.reasons.map(describeUpgradeReason).join('; '),
      ]),
    ),
  ];
  if (r.held.length) lines.push(`held (left alone): ${r.held.join(', ')}`);
  for (const x of r.removals)
    lines.push(
      `removed by the transaction: ${x.package} ${x.installed} (${x.by} conflicts with ${x.conflicts} and replaces ${x.replaces})`,
    );
  lines.push(
    apply
      ? `Registered and marked for ${r.lc}'s next run: ${r.patches.map((p) => p.name).join(', ')}`
      : `${r.updates.length} package(s) move together; register them with --apply`,
  );
  return lines.join('\n');
}

export function registerUpdatesCommand(program: Command, ctx: CliContext): void {
  program
    .command('updates <lc>')
    .description(
      'the Debian updates pending for a logical computer: from its dpkg status against the apt feeds, the packages that must move together',
    )
    .option(
      '--feed <name>',
      'use only these apt feeds (repeat or comma-separate; default: every apt feed)',
      collect,
      [],
    )
    .option(
      '--package <name>',
      'only the updates of these installed packages and what must move with them (repeat or comma-separate)',
      collect,
      [],
    )
    .option(
      '--apply',
      "download and verify the .deb files, register them as patches and mark them for the LC's next run",
    )
    .action(async (lcName: string, o: { feed: string[]; package: string[]; apply?: boolean }) => {
      const api = ctx.api();
      if (api) {
        const lc = encodeURIComponent(lcName);
        const result = o.apply
          ? await api.request<PendingUpdates>('POST', `/v1/lcs/${lc}/updates`, {
              feeds: o.feed,
              packages: o.package,
            })
          : await api.request<PendingUpdates>(
              'GET',
              `/v1/lcs/${lc}/updates?${new URLSearchParams({
                ...(o.feed.length ? { feed: o.feed.join(',') } : {}),
                ...(o.package.length ? { package: o.package.join(',') } : {}),
              })}`,
            );
        ctx.print(result, () => render(result, o.apply === true));
        return;
      }
      const app = ctx.openApp();
      try {
        const result = await lcPendingUpdates({
          db: app.db,
          catalogue: app.catalogue,
          host: await app.host(),
          stateDir: app.stateDir,
          lc: lcName,
          feeds: o.feed,
          packages: o.package,
          apply: o.apply === true,
        });
        ctx.print(result, () => render(result, o.apply === true));
      } finally {
        app.close();
      }
    });
}
