/**
 * Step 709, what the manager checks itself: the standby reports its own patch results (1207), and a
 * standby that lies (a broken or edited patch script, a compromised image) must not get the service.
 * After the report and the reboot, the manager reads the standby's system disk from the host — every
 * path resolved inside the disk's root, never following a link out of it (rootfs-io) — and checks what
 * it can against the patch files it holds (their sha256 was checked when they were written):
 *
 * - `deb`: the dpkg status says the package is installed at the version of the .deb, and every regular
 *   file the .deb ships has the content the .deb has (a file diverted by another package is checked
 *   where it was diverted to; conffiles are left out: dpkg keeps an administrator's changes to them).
 * - `archive`: every file named in the archive's `manifest.after` has that sha256.
 * - `diff` and `script`: nothing on the disk says what they should have done; their report stands.
 *
 * Works on any disk root (both drivers: the disk store gives the host path of the standby's disk).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnderstudyError, exec, isErrno } from '../core/index.ts';
import type { Patch } from '../catalogue/index.ts';
import { hashFileInRoot, readFileInRoot } from '../drivers/index.ts';

export interface PatchVerification {
  name: string;
  format: Patch['format'];
  /** `checked`: the disk matches; `not-checkable`: the format leaves nothing on the disk to check. */
  outcome: 'checked' | 'not-checkable';
  /** What was checked, e.g. `understudy-demo-fix 1.0.1 installed, 3 files`. */
  detail: string;
  /** Every difference found (empty when the outcome is `checked`). */
  problems: string[];
}

/** The stanzas of a dpkg status file (RFC 822 style), each as field → value (continuation lines kept). */
export function parseDpkgStatus(text: string): Map<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .filter((block) => block.trim())
    .map((block) => {
      const fields = new Map<string, string>();
      let last: string | undefined;
      for (const line of block.split('\n')) {
        if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
          fields.set(last, `${fields.get(last) ?? ''}\n${line.trim()}`);
          continue;
        }
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        last = line.slice(0, colon);
        fields.set(last, line.slice(colon + 1).trim());
      }
      return fields;
    });
}

/** dpkg-divert's database: diverted path → [path it was diverted to, package that diverted it]. */
export function parseDiversions(text: string): Map<string, { to: string; by: string }> {
  const lines = text.split('\n');
  const diversions = new Map<string, { to: string; by: string }>();
  for (let i = 0; i + 2 < lines.length && lines[i]; i += 3)
    diversions.set(lines[i] as string, { to: lines[i + 1] ?? '', by: lines[i + 2] ?? '' });
  return diversions;
}

/** `sha256sum` output lines (`<hex>  <path>` or `<hex> *<path>`), paths relative to the patch's base `/`. */
export function parseManifest(text: string): { sha256: string; path: string }[] {
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (!m)
        throw new UnderstudyError(
          'RUN_PATCH_UNVERIFIED',
          `A manifest line is not "<sha256>  <path>": ${line}`,
        );
      return { sha256: m[1] as string, path: `/${(m[2] as string).replace(/^\.?\/+/, '')}` };
    });
}

function readOptional(root: string, lcPath: string): Buffer | undefined {
  try {
    return readFileInRoot(root, lcPath);
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

/** The sha256 of a file on the disk, or why it cannot be read (missing, not a regular file, …). */
function diskHash(root: string, lcPath: string): { sha256: string } | { problem: string } {
  try {
    return { sha256: hashFileInRoot(root, lcPath, 'sha256') };
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return { problem: `${lcPath} is missing` };
    if (error instanceof UnderstudyError) return { problem: error.message };
    throw error;
  }
}

/** Regular files under `dir` (a host directory the manager made), as paths relative to it. */
function regularFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) return regularFiles(dir, relative);
    return entry.isFile() ? [relative] : [];
  });
}

async function verifyDeb(root: string, patch: Patch): Promise<PatchVerification> {
  const fields = await exec(['dpkg-deb', '--field', patch.filePath, 'Package', 'Version', 'Architecture']);
  const control = parseDpkgStatus(fields.stdout)[0] ?? new Map<string, string>();
  const pkg = control.get('Package') ?? '';
  const version = control.get('Version') ?? '';
  const arch = control.get('Architecture') ?? '';
  const problems: string[] = [];
  const status = readOptional(root, '/var/lib/dpkg/status')?.toString('utf8') ?? '';
  const stanza = parseDpkgStatus(status).find(
    (s) =>
      s.get('Package') === pkg &&
      (arch === 'all' ||
        !s.has('Architecture') ||
        s.get('Architecture') === arch ||
        s.get('Architecture') === 'all'),
  );
  if (!stanza) problems.push(`the dpkg status does not list ${pkg}`);
  else {
    if (stanza.get('Status') !== 'install ok installed')
      problems.push(
        `${pkg} is "${stanza.get('Status') ?? '?'}" in the dpkg status, not "install ok installed"`,
      );
    if (stanza.get('Version') !== version)
      problems.push(
        `${pkg} is at version ${stanza.get('Version') ?? '?'} in the dpkg status, not ${version}`,
      );
  }
  const conffiles = new Set(
    (await exec(['dpkg-deb', '--info', patch.filePath, 'conffiles'], { okCodes: [0, 1, 2] })).stdout
      .split('\n')
      .map((l) => l.trim().replace(/^remove-on-upgrade\s+/, ''))
      .filter(Boolean),
  );
  const diversions = parseDiversions(readOptional(root, '/var/lib/dpkg/diversions')?.toString('utf8') ?? '');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-verify-'));
  let files = 0;
  try {
    await exec(['dpkg-deb', '--extract', patch.filePath, work], { timeoutMs: 10 * 60_000 });
    for (const relative of regularFiles(work)) {
      const shipped = `/${relative}`;
      if (conffiles.has(shipped)) continue;
      const diversion = diversions.get(shipped);
      const onDisk = diversion && diversion.by !== pkg ? diversion.to : shipped;
      const expected = crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(work, relative)))
        .digest('hex');
      const found = diskHash(root, onDisk);
      files++;
      if ('problem' in found) problems.push(found.problem);
      else if (found.sha256 !== expected)
        problems.push(`${onDisk} differs from the one in ${pkg} ${version}`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return {
    name: patch.name,
    format: patch.format,
    outcome: 'checked',
    detail: `${pkg} ${version} installed, ${files} file(s)`,
    problems,
  };
}

async function verifyArchive(root: string, patch: Patch): Promise<PatchVerification> {
  const listing = await exec(['tar', '-tf', patch.filePath]);
  const member = listing.stdout.split('\n').find((n) => n.replace(/^\.\//, '') === 'manifest.after');
  if (!member)
    return {
      name: patch.name,
      format: patch.format,
      outcome: 'not-checkable',
      detail: 'no manifest.after',
      problems: [],
    };
  const manifest = parseManifest((await exec(['tar', '-xOf', patch.filePath, member])).stdout);
  const problems: string[] = [];
  for (const entry of manifest) {
    const found = diskHash(root, entry.path);
    if ('problem' in found) problems.push(found.problem);
    else if (found.sha256 !== entry.sha256)
      problems.push(`${entry.path} does not have the sha256 of manifest.after`);
  }
  return {
    name: patch.name,
    format: patch.format,
    outcome: 'checked',
    detail: `manifest.after, ${manifest.length} file(s)`,
    problems,
  };
}

/**
 * Checks the patches on the standby's system disk at `root` (a host path). Resolves with what was
 * checked; throws RUN_PATCH_UNVERIFIED naming every patch whose result is not on the disk.
 */
export async function verifyPatchesOnDisk(options: {
  root: string;
  standby: string;
  patches: readonly Patch[];
}): Promise<PatchVerification[]> {
  const results: PatchVerification[] = [];
  for (const patch of options.patches) {
    if (patch.format === 'deb') results.push(await verifyDeb(options.root, patch));
    else if (patch.format === 'archive') results.push(await verifyArchive(options.root, patch));
    else
      results.push({
        name: patch.name,
        format: patch.format,
        outcome: 'not-checkable',
        detail: `a ${patch.format} patch leaves nothing on the disk to check`,
        problems: [],
      });
  }
  const failed = results.filter((r) => r.problems.length > 0);
  if (failed.length > 0)
    throw new UnderstudyError(
      'RUN_PATCH_UNVERIFIED',
      `The standby "${options.standby}" reported ${failed.map((r) => r.name).join(', ')} applied, but its system disk says otherwise:\n  ${failed
        .flatMap((r) => r.problems.slice(0, 10).map((p) => `${r.name}: ${p}`))
        .join('\n  ')}`,
      {
        hint: "The standby is discarded and the service stays on the original LC. Read the standby's patch output (`understudy run show`) and check its patch execution script (/etc/rc.d/S05understudy-patch) and image.",
        details: { problems: Object.fromEntries(failed.map((r) => [r.name, r.problems])) },
      },
    );
  return results;
}
