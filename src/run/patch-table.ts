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
  /** busybox-init systems: a start-up script. */
  script: '/etc/rc.d/S05understudy-patch',
  /** systemd systems: the script, its unit, and the drop-in that pulls the unit into the boot. */
  unitScript: '/usr/lib/understudy/understudy-patch',
  unit: '/etc/systemd/system/understudy-patch.service',
  unitWants: '/etc/systemd/system/sysinit.target.d/understudy-patch.conf',
} as const;

/** What the transaction did to the Debian package of a `deb` patch. */
export interface PackageOutcome {
  package: string;
  oldVersion: string;
  newVersion: string;
  intendedVersion: string;
  /** apt-get or dpkg. */
  tool: string;
  /** Configuration files the administrator changed and that were kept. */
  conffilesKept: string[];
}

export interface PatchReportEntry {
  name: string;
  result: 'ok' | 'failed';
  exitCode: number;
  appliedAt: string;
  /** For a `deb` patch. */
  deb?: PackageOutcome;
}

/** What needs a restart after the patches (needrestart's view), as the standby saw it. */
export interface RestartNeeds {
  processes: { pid: number; command: string }[];
  rebootRequired: boolean;
}

export interface PatchReport {
  entries: PatchReportEntry[];
  restart?: RestartNeeds;
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

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

function debOutcome(r: Record<string, unknown>): PackageOutcome | undefined {
  if (typeof r.package !== 'string') return undefined;
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    package: r.package,
    oldVersion: text(r.oldVersion),
    newVersion: text(r.newVersion),
    intendedVersion: text(r.intendedVersion),
    tool: text(r.tool),
    conffilesKept: strings(r.conffilesKept),
  };
}

/**
 * Reads the script's report: `{patches: [...], restart: {...}}` (or a bare list of entries); every
 * expected patch must be in it.
 */
export function parsePatchReport(report: unknown, expected: readonly string[]): PatchReport {
  const wrapped =
    typeof report === 'object' && report !== null && !Array.isArray(report)
      ? (report as { patches?: unknown; restart?: unknown })
      : undefined;
  const body = wrapped ? wrapped.patches : report;
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
    const deb = debOutcome(e as Record<string, unknown>);
    return {
      name: r.name,
      result: r.result,
      exitCode: r.exitCode,
      appliedAt: typeof r.appliedAt === 'string' ? r.appliedAt : '',
      ...(deb ? { deb } : {}),
    };
  });
  const missing = expected.filter((name) => !entries.some((e) => e.name === name));
  if (missing.length > 0)
    throw new UnderstudyError(
      'RUN_REPORT_INVALID',
      `The standby's patch report does not mention ${missing.join(', ')}`,
    );
  const restart = wrapped?.restart as Partial<RestartNeeds> | undefined;
  return {
    entries,
    ...(restart
      ? {
          restart: {
            processes: Array.isArray(restart.processes)
              ? restart.processes.filter(
                  (p): p is { pid: number; command: string } =>
                    typeof p === 'object' && p !== null && typeof (p as { pid?: unknown }).pid === 'number',
                )
              : [],
            rebootRequired: restart.rebootRequired === true,
          },
        }
      : {}),
  };
}
