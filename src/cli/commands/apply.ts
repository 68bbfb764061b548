/** `understudy apply <file>`: make the host match a YAML description (host, images, LCs). Idempotent. */
import fs from 'node:fs';
import type { Command } from 'commander';
import { requireRoot } from '../../core/index.ts';
import { loadHostConfig } from '../../config/index.ts';
import { applyHostConfig } from '../../app/index.ts';
import type { CliContext } from '../context.ts';

export function registerApplyCommand(program: Command, ctx: CliContext): void {
  program
    .command('apply <file>')
    .description('create what a YAML host description lists and is missing (host, pools, images, LCs)')
    .action(async (file: string) => {
      const config = loadHostConfig(file);
      const print = (changes: string[]): void =>
        ctx.print({ applied: file, changes }, () =>
          changes.length ? changes.join('\n') : 'nothing to do: the host already matches',
        );
      const api = ctx.api();
      if (api) {
        // The daemon parses and checks the same text (the file was read here to fail early).
        const { changes } = await api.request<{ changes: string[] }>('POST', '/v1/apply', {
          yaml: fs.readFileSync(file, 'utf8'),
          file,
        });
        print(changes);
        return;
      }
      requireRoot('apply');
      const app = ctx.openApp();
      try {
        print(
          await applyHostConfig({
            db: app.db,
            stateDir: app.stateDir,
            cacheDir: app.paths.cache,
            config,
            initHost: true,
            host: () => app.start(),
            progress: (line) => ctx.progress(line),
          }),
        );
      } finally {
        app.close();
      }
    });
}
