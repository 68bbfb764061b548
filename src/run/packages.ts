/**
 * The Debian packages of a run's `deb` patches: what each file carries (read on the host with dpkg-deb)
 * and what the standby's dpkg status says after the reboot (read from its disk, resolved inside its root).
 */
import { UnderstudyError, exec } from '../core/index.ts';
import type { LcRecord } from '../inventory/index.ts';
import type { RunContext } from './context.ts';

export interface DebControl {
  package: string;
  version: string;
}

/** Package and Version of a .deb file. */
export async function debControl(file: string): Promise<DebControl> {
  const out = await exec(['dpkg-deb', '--show', '--showformat=${Package}\\n${Version}\\n', file]);
  const [pkg = '', version = ''] = out.stdout.split('\n');
  return { package: pkg, version };
}

/** Package → { version, status } of every stanza of a dpkg status file. */
export function parseDpkgStatus(text: string): Map<string, { version: string; status: string }> {
  const packages = new Map<string, { version: string; status: string }>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string =>
      new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(stanza)?.[1]?.trim() ?? '';
    const pkg = field('Package');
    if (pkg) packages.set(pkg, { version: field('Version'), status: field('Status') });
  }
  return packages;
}

/**
 * Checks that every package of the run's deb patches is installed on `lc` at the patch's version.
 * Resolves with what it found; throws RUN_STANDBY_VERSIONS naming each package that is not.
 */
export async function checkPackages(
  c: RunContext,
  lc: LcRecord,
  hint: string,
): Promise<{ name: string; version: string; intended: string }[]> {
  const debs = c.options.patches.map((name) => c.catalogue.getPatch(name)).filter((p) => p.format === 'deb');
  if (debs.length === 0) return [];
  const status = parseDpkgStatus((await c.host.driver.readFile(lc, '/var/lib/dpkg/status')).toString('utf8'));
  const found = await Promise.all(
    debs.map(async (patch) => {
      const control = await debControl(patch.filePath);
      const now = status.get(control.package);
      return {
        name: control.package,
        version: now?.version ?? '',
        status: now?.status ?? 'not installed',
        intended: control.version,
      };
    }),
  );
  const wrong = found.filter((p) => p.version !== p.intended || p.status !== 'install ok installed');
  if (wrong.length > 0)
    throw new UnderstudyError(
      'RUN_STANDBY_VERSIONS',
      `After the reboot, ${lc.name} does not have the patched packages: ${wrong.map((p) => `${p.name} is ${p.version || '(none)'} (${p.status}), expected ${p.intended}`).join('; ')}`,
      { hint },
    );
  return found.map(({ name, version, intended }) => ({ name, version, intended }));
}
