/**
 * `understudy updates <lc> [--apply]`: the Debian updates pending for an LC, computed from its own dpkg
 * status (read from its system disk, inside its root) against the verified indexes of the apt feeds;
 * with --apply, exactly those .deb files are registered and marked for the LC's next patch run.
 */
import type { Command } from 'commander';
import { lcPendingUpdates, openApp } from '../../app/index.ts';
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
      '--apply',
      "download and verify the .deb files, register them as patches and mark them for the LC's next run",
    )
    .action(async (lcName: string, o: { feed: string[]; apply?: boolean }) => {
      const app = openApp(ctx.stateDir());
      try {
        const result = await lcPendingUpdates({
          db: app.db,
          catalogue: app.catalogue,
          host: await app.host(),
          stateDir: app.stateDir,
          lc: lcName,
          feeds: o.feed,
          apply: o.apply === true,
        });
        ctx.print(result, () => render(result, o.apply === true));
      } finally {
        app.close();
      }
    });
}
