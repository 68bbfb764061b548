/**
 * The patch table written into the standby's system disk for the patch execution script (705/706),
 * and reading back what the script reported (1207).
 */
import { UnderstudyError } from '../core/index.ts';
import type { Patch } from '../catalogue/index.ts';

export const standbyPaths = {
  dir: '/var/lib/understudy',
  table: '/var/lib/understudy/patch-table',
  patches: '/var/lib/understudy/patches',
  output: '/var/lib/understudy/patch-output',
  script: '/etc/rc.d/S05understudy-patch',
} as const;

export interface PatchReportEntry {
  name: string;
  result: 'ok' | 'failed';
  exitCode: number;
  appliedAt: string;
}

/** One line per patch: name|format|sha256|base|timeout|next|result|exit|applied_at (see assets/patch). */
export function renderPatchTable(
  patches: readonly Patch[],
  options: { timeoutSeconds?: number } = {},
): string {
  return (
    patches
      .map((p) =>
        [p.name, p.format, p.sha256, '/', String(options.timeoutSeconds ?? 300), 'yes', '-', '-', '-'].join(
          '|',
        ),
      )
      .join('\n') + '\n'
  );
}

export function parsePatchReport(body: unknown, expected: readonly string[]): PatchReportEntry[] {
  if (!Array.isArray(body))
    throw new UnderstudyError(
      'RUN_REPORT_INVALID',
      `The standby's patch report is not a list: ${JSON.stringify(body).slice(0, 200)}`,
    );
  const entries = body.map((e: unknown) => {
    const r = e as Partial<PatchReportEntry>;
    if (
      typeof r.name !== 'string' ||
      (r.result !== 'ok' && r.result !== 'failed') ||
      typeof r.exitCode !== 'number'
    ) {
      throw new UnderstudyError(
        'RUN_REPORT_INVALID',
        `The standby's patch report has a malformed entry: ${JSON.stringify(e).slice(0, 200)}`,
      );
    }
    return {
      name: r.name,
      result: r.result,
      exitCode: r.exitCode,
      appliedAt: typeof r.appliedAt === 'string' ? r.appliedAt : '',
    };
  });
  const missing = expected.filter((name) => !entries.some((e) => e.name === name));
  if (missing.length > 0)
    throw new UnderstudyError(
      'RUN_REPORT_INVALID',
      `The standby's patch report does not mention ${missing.join(', ')}`,
    );
  return entries;
}
