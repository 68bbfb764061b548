/** `understudy image build|list|remove`. */
import type { Command } from 'commander';
import { buildImage, importImage, listImages, recipeNames, removeImage } from '../../images/index.ts';
import { getPool, requireHost } from '../../host/index.ts';
import { openApp } from '../../app/index.ts';
import { requireRoot } from '../../core/index.ts';
import { table, type CliContext } from '../context.ts';

export function registerImageCommands(program: Command, ctx: CliContext): void {
  const image = program.command('image').description('root-filesystem images LCs are created from');

  image
    .command('build <recipe>')
    .description(`build an image (${recipeNames.join(' | ')})`)
    .option('--name <name>', 'image name (default: the recipe name)')
    .option('--rebuild', 'rebuild even if the image exists')
    .option(
      '--suite <suite>',
      "debian: a real Debian system of this suite (systemd as init) from the host's Debian archive",
    )
    .option('--packages <list>', 'debian: packages to install, comma-separated (e.g. nginx,curl)')
    .action(
      async (
        recipe: string,
        opts: { name?: string; rebuild?: boolean; suite?: string; packages?: string },
      ) => {
        requireRoot('image build');
        const app = openApp(ctx.stateDir());
        try {
          await requireHost(app.db);
          const started = Date.now();
          const record = await buildImage({
            db: app.db,
            recipe,
            name: opts.name,
            rebuild: opts.rebuild,
            suite: opts.suite,
            packages: opts.packages
              ?.split(',')
              .map((p) => p.trim())
              .filter(Boolean),
            pool: getPool(app.db, 'main'),
            cacheDir: app.paths.cache,
            progress: (line) =>
              ctx.progress(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`),
          });
          ctx.print(
            record,
            () =>
              `image ${record.name}: ${(record.sizeBytes / 1024 ** 2).toFixed(0)} MiB, built in ${(record.buildMs / 1000).toFixed(1)} s`,
          );
        } finally {
          app.close();
        }
      },
    );

  image
    .command('import <source>')
    .description('make an image of an existing root filesystem (a directory or a tar archive)')
    .requiredOption('--name <name>', 'image name')
    .option('--rebuild', 'replace an image of that name')
    .action(async (source: string, opts: { name: string; rebuild?: boolean }) => {
      requireRoot('image import');
      const app = openApp(ctx.stateDir());
      try {
        await requireHost(app.db);
        const record = await importImage({
          db: app.db,
          source,
          name: opts.name,
          rebuild: opts.rebuild,
          pool: getPool(app.db, 'main'),
          progress: (line) => ctx.progress(line),
        });
        ctx.print(
          record,
          () =>
            `image ${record.name}: ${(record.sizeBytes / 1024 ** 2).toFixed(0)} MiB, imported from ${source}`,
        );
      } finally {
        app.close();
      }
    });

  image
    .command('list')
    .description('list built images')
    .action(() => {
      const app = openApp(ctx.stateDir());
      try {
        const images = listImages(app.db);
        ctx.print(images, () =>
          images.length === 0
            ? 'no images; build one with `understudy image build busybox`'
            : table(
                ['NAME', 'RECIPE', 'SIZE', 'BUILT'],
                images.map((i) => [
                  i.name,
                  i.recipe,
                  `${(i.sizeBytes / 1024 ** 2).toFixed(0)} MiB`,
                  i.builtAt,
                ]),
              ),
        );
      } finally {
        app.close();
      }
    });

  image
    .command('remove <name>')
    .description('delete an image (LCs made from it keep working)')
    .action(async (name: string) => {
      const app = openApp(ctx.stateDir());
      try {
        await removeImage(app.db, name);
        ctx.print({ removed: name }, () => `image ${name} removed`);
      } finally {
        app.close();
      }
    });
}
