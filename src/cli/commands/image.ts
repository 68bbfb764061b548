/** `understudy image build|list|remove`. */
import path from 'node:path';
import type { Command } from 'commander';
import { buildImage, importImage, listImages, recipeNames, removeImage } from '../../images/index.ts';
import { getPool, requireHost } from '../../host/index.ts';

import { UnderstudyError, errorCatalogue, requireRoot, type ErrorCode } from '../../core/index.ts';
import type { ImageRecord } from '../../images/index.ts';
import type { ApiClient } from '../api-client.ts';
import { table, type CliContext } from '../context.ts';

/**
 * Builds the image on a running `serve` and follows its `image.build` events: each phase is a line
 * of progress, as the local build prints it; a failed build throws the daemon's error.
 */
async function buildOverApi(
  api: ApiClient,
  ctx: CliContext,
  request: { recipe: string; name?: string; rebuild?: boolean; suite?: string; packages?: string[] },
): Promise<ImageRecord> {
  const { build } = await api.request<{ build: { id: string; eventsAfter: number } }>(
    'POST',
    '/v1/images',
    request,
  );
  let end: Record<string, unknown> | undefined;
  await api.follow({ after: build.eventsAfter }, (event) => {
    const d = event.data;
    if (event.type !== 'image.build' || d.buildId !== build.id) return false;
    if (d.phase === 'built' || d.phase === 'failed') {
      end = d;
      return true;
    }
    ctx.progress(`[${(Number(d.elapsedMs) / 1000).toFixed(1).padStart(5)}s] ${String(d.message)}`);
    return false;
  });
  if (!end) throw new UnderstudyError('API_NOT_AVAILABLE', `The event stream of ${api.url} ended early`);
  if (end.phase === 'failed') {
    const code = String(end.code ?? 'INTERNAL');
    throw new UnderstudyError(
      (code in errorCatalogue ? code : 'INTERNAL') as ErrorCode,
      String(end.error ?? 'the image build failed'),
    );
  }
  const { images } = await api.request<{ images: ImageRecord[] }>('GET', '/v1/images');
  const image = images.find((i) => i.name === end?.image);
  if (!image)
    throw new UnderstudyError('INTERNAL', `${api.url} built "${String(end.image)}" but does not list it`);
  return image;
}

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
        const packages = opts.packages
          ?.split(',')
          .map((p) => p.trim())
          .filter(Boolean);
        const api = ctx.api();
        if (api) {
          const record = await buildOverApi(api, ctx, { recipe, ...opts, packages });
          ctx.print(
            record,
            () =>
              `image ${record.name}: ${(record.sizeBytes / 1024 ** 2).toFixed(0)} MiB, built in ${(record.buildMs / 1000).toFixed(1)} s by ${api.url}`,
          );
          return;
        }
        requireRoot('image build');
        const app = ctx.openApp();
        try {
          await requireHost(app.db);
          const started = Date.now();
          const record = await buildImage({
            db: app.db,
            recipe,
            name: opts.name,
            rebuild: opts.rebuild,
            suite: opts.suite,
            packages,
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
      const api = ctx.api();
      if (api) {
        // The source is a path on the daemon's host (the host it manages).
        const { image: record } = await api.request<{ image: ImageRecord }>('POST', '/v1/images/import', {
          source: path.resolve(source),
          name: opts.name,
          rebuild: opts.rebuild === true,
        });
        ctx.print(
          record,
          () =>
            `image ${record.name}: ${(record.sizeBytes / 1024 ** 2).toFixed(0)} MiB, imported from ${source} by ${api.url}`,
        );
        return;
      }
      requireRoot('image import');
      const app = ctx.openApp();
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
    .action(async () => {
      const api = ctx.api();
      let images: ImageRecord[];
      if (api) images = (await api.request<{ images: ImageRecord[] }>('GET', '/v1/images')).images;
      else {
        const app = ctx.openApp();
        try {
          images = listImages(app.db);
        } finally {
          app.close();
        }
      }
      ctx.print(images, () =>
        images.length === 0
          ? 'no images; build one with `understudy image build busybox`'
          : table(
              ['NAME', 'RECIPE', 'SIZE', 'BUILT'],
              images.map((i) => [i.name, i.recipe, `${(i.sizeBytes / 1024 ** 2).toFixed(0)} MiB`, i.builtAt]),
            ),
      );
    });

  image
    .command('remove <name>')
    .description('delete an image (LCs made from it keep working)')
    .action(async (name: string) => {
      const api = ctx.api();
      if (api) await api.request('DELETE', `/v1/images/${encodeURIComponent(name)}`);
      else {
        const app = ctx.openApp();
        try {
          await removeImage(app.db, name);
        } finally {
          app.close();
        }
      }
      ctx.print({ removed: name }, () => `image ${name} removed`);
    });
}
