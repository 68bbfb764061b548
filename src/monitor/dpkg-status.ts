/**
 * What an LC has installed, from its own dpkg database (`/var/lib/dpkg/status` on its system disk). The
 * file comes from inside the LC, whose root may write anything into it: it is bounded in size before it
 * is parsed, and names and versions are checked against Debian policy.
 */
import { UnderstudyError } from '../core/index.ts';
import { parseDeb822, relationsOf, sourceOf, type PackageRelations } from './apt-index.ts';

/** Where dpkg keeps its database of installed packages, inside the LC. */
export const dpkgStatusPath = '/var/lib/dpkg/status';
/** A real system's status file is a few MiB (a full desktop ~5 MiB); larger is not believed. */
export const maxDpkgStatusBytes = 32 * 1024 * 1024;
const maxInstalledPackages = 20_000;

/** Debian policy: package names are lower case, start alphanumeric. */
export const packageNamePattern = /^[a-z0-9][a-z0-9+.-]{0,99}$/;
/** Debian policy version syntax ([epoch:]upstream[-revision]), bounded in length. */
export const versionPattern = /^(?:[0-9]{1,9}:)?[0-9][A-Za-z0-9.+~-]{0,126}$/;

export interface InstalledPackage extends PackageRelations {
  name: string;
  version: string;
  architecture: string;
  source: string;
  sourceVersion: string;
  /** Held (`hold` selection): apt does not upgrade it on its own. */
  held: boolean;
}

/** dpkg states in which the package's files are on disk (not `not-installed`, not `config-files`). */
const presentStates = new Set([
  'installed',
  'half-configured',
  'unpacked',
  'half-installed',
  'triggers-awaited',
  'triggers-pending',
]);

function invalid(where: string, why: string): UnderstudyError {
  return new UnderstudyError('DPKG_STATUS_INVALID', `The dpkg status of ${where} ${why}`, {
    details: { where },
  });
}

/**
 * Parses a dpkg status file. Throws DPKG_STATUS_INVALID when it is larger than maxDpkgStatusBytes, lists
 * more than 20,000 present packages, or has a present package with an invalid name or version.
 * `where` names the LC for messages.
 */
export function parseDpkgStatus(data: Buffer, where: string): InstalledPackage[] {
  if (data.length > maxDpkgStatusBytes)
    throw invalid(where, `is ${data.length} bytes, more than the limit of ${maxDpkgStatusBytes}`);
  const out: InstalledPackage[] = [];
  for (const stanza of parseDeb822(data.toString('utf8'))) {
    const [want = '', , state = ''] = (stanza.get('Status') ?? '').split(/\s+/);
    if (!presentStates.has(state)) continue;
    const name = stanza.get('Package') ?? '';
    const version = stanza.get('Version') ?? '';
    if (!packageNamePattern.test(name) || !versionPattern.test(version))
      throw invalid(where, `has a package with an invalid name or version: "${name}" "${version}"`);
    out.push({
      name,
      version,
      architecture: stanza.get('Architecture') ?? '',
      ...sourceOf(stanza, name, version),
      ...relationsOf(stanza),
      held: want === 'hold',
    });
    if (out.length > maxInstalledPackages)
      throw invalid(where, `lists more than ${maxInstalledPackages} installed packages`);
  }
  if (out.length === 0) throw invalid(where, 'lists no installed package');
  return out;
}
