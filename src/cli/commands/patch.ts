/** `understudy patch …`: the patch table by hand (add a patch file, list, mark for the next run). */
import type { Command } from 'commander';

import { UnderstudyError } from '../../core/index.ts';
import {
  checkPatchFile,
  parsePatchFormat,
  sha256File,
  type PatchLcState,
  type Patch,
  type PatchCategory,
} from '../../catalogue/index.ts';
import { findLc } from '../../inventory/index.ts';
import { table, type CliContext } from '../context.ts';
import fs from 'node:fs';
import path from 'node:path';

function collect(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

function onOff(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new UnderstudyError('INVALID_ARGUMENT', `--next-run must be "on" or "off", not "${value}"`);
}

function renderPatches(patches: readonly Patch[]): string {
  if (patches.length === 0) return 'No patches registered.';
  return table(
    ['NAME', 'CATEGORIES', 'FORMAT', 'SIZE', 'SOURCE', 'PUBLISHED', 'REGISTERED'],
    patches.map((p) => [
      p.name,
      p.categories.join(','),
      p.format,
      String(p.size),
      p.sourceFeed ?? '(manual)',
      p.publishedAt?.slice(0, 10) ?? '-',
      p.registeredAt.slice(0, 19),
    ]),
  );
}

function renderLcPatches(rows: readonly (Patch & { state: PatchLcState | null })[]): string {
  return rows.length === 0
    ? 'No patches registered.'
    : table(
        ['NAME', 'CATEGORIES', 'APPLIED', 'NEXT RUN', 'LAST RESULT'],
        rows.map((r) => [
          r.name,
          r.categories.join(','),
          r.state?.appliedAt?.slice(0, 19) ?? 'not yet',
          r.state?.applyNextRun ? 'yes' : 'no',
          r.state?.lastResult
            ? `${r.state.lastResult}${r.state.lastExitCode === null ? '' : ` (exit ${r.state.lastExitCode})`}`
            : '-',
        ]),
      );
}

export function registerPatchCommands(program: Command, ctx: CliContext): void {
  const patch = program
    .command('patch')
    .description('the patch table: registered patches and their state per logical computer');

  patch
    .command('add <file>')
    .description('register a patch file (its sha256 is verified first when --sha256 is given)')
    .requiredOption('--category <list>', 'security, feature, bugfix (repeat or comma-separate)', collect, [])
    .requiredOption('--format <format>', 'diff | archive | script | deb')
    .option('--name <name>', 'patch name (default: the file name)')
    .option('--sha256 <hex>', 'the expected sha256 of the file')
    .option('--description <text>', 'what the patch does')
    .action(
      async (
        file: string,
        opts: { category: string[]; format: string; name?: string; sha256?: string; description?: string },
      ) => {
        const format = parsePatchFormat(opts.format);
        await checkPatchFile(file, format);
        const sha256 = opts.sha256 ?? (await sha256File(file)).sha256;
        const api = ctx.api();
        if (api) {
          // The file goes to the daemon, which checks its sha256 and registers it as the CLI does.
          const answer = await api.request<{ patch: Patch; created: boolean }>('POST', '/v1/patches', {
            name: opts.name ?? path.basename(file),
            categories: opts.category,
            format,
            contentBase64: fs.readFileSync(file).toString('base64'),
            sha256,
            ...(opts.description ? { description: opts.description } : {}),
          });
          ctx.print(
            answer,
            () =>
              `${answer.created ? 'Registered' : 'Already registered'}: ${answer.patch.name} (${answer.patch.categories.join(',')}, ${answer.patch.format}, sha256 ${answer.patch.sha256})`,
          );
          return;
        }
        const { db, catalogue } = ctx.openApp();
        try {
          const { patch: added, created } = await catalogue.registerPatch({
            file,
            name: opts.name ?? path.basename(file),
            categories: opts.category as PatchCategory[],
            format,
            sha256,
            description: opts.description,
          });
          ctx.print(
            { patch: added, created },
            () =>
              `${created ? 'Registered' : 'Already registered'}: ${added.name} (${added.categories.join(',')}, ${added.format}, sha256 ${added.sha256})`,
          );
        } finally {
          db.close();
        }
      },
    );

  patch
    .command('list')
    .description('list registered patches; with --lc, their state on that logical computer')
    .option('--lc <lc>', 'show applied date, next-run flag and last result on this LC')
    .action(async (opts: { lc?: string }) => {
      const api = ctx.api();
      if (api && !opts.lc) {
        const { patches } = await api.request<{ patches: Patch[] }>('GET', '/v1/patches');
        ctx.print({ patches }, () => renderPatches(patches));
        return;
      }
      if (api && opts.lc) {
        const lc = opts.lc;
        const { patches: rows } = await api.request<{ patches: (Patch & { state: PatchLcState | null })[] }>(
          'GET',
          `/v1/patches?lc=${encodeURIComponent(lc)}`,
        );
        ctx.print({ lc, patches: rows }, () => renderLcPatches(rows));
        return;
      }
      const { db, catalogue } = ctx.openApp();
      try {
        const patches = catalogue.listPatches();
        if (!opts.lc) return ctx.print({ patches }, () => renderPatches(patches));
        const lc = opts.lc;
        const states = new Map(catalogue.lcStates({ lc }).map((s) => [s.patch, s]));
        const rows = patches.map((p) => ({ ...p, state: states.get(p.name) ?? null }));
        ctx.print({ lc, patches: rows }, () => renderLcPatches(rows));
      } finally {
        db.close();
      }
    });

  patch
    .command('mark <name>')
    .description('set or clear "apply at next run" for a patch on a logical computer')
    .requiredOption('--lc <lc>', 'the logical computer')
    .requiredOption('--next-run <on|off>', 'on or off')
    .action(async (name: string, opts: { lc: string; nextRun: string }) => {
      const on = onOff(opts.nextRun);
      const api = ctx.api();
      if (api) {
        const { state } = await api.request<{ state: PatchLcState }>(
          'POST',
          `/v1/patches/${encodeURIComponent(name)}/next-run`,
          { lc: opts.lc, nextRun: on },
        );
        ctx.print({ state }, () => `${name} on ${opts.lc}: apply at next run ${on ? 'on' : 'off'}`);
        return;
      }
      const { db, catalogue } = ctx.openApp();
      try {
        catalogue.getPatch(name);
        if (!findLc(db, opts.lc))
          throw new UnderstudyError('LC_NOT_FOUND', `There is no logical computer named "${opts.lc}"`, {
            hint: '`understudy lc list` shows the logical computers; mark the patch for one of them.',
          });
        const state = catalogue.markNextRun(name, opts.lc, on);
        ctx.print({ state }, () => `${name} on ${opts.lc}: apply at next run ${on ? 'on' : 'off'}`);
      } finally {
        db.close();
      }
    });
}
