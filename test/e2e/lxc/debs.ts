/**
 * Real Debian packages for patch tests: fetched with `apt-get download` from the host's configured
 * archives (cached under the test cache by name and version), or, when the archives hold no newer
 * version than the one installed, a real package repacked with a bumped version (the caller is told,
 * so that the test can say so).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exec } from '../../../src/core/index.ts';

export const testCacheDir = process.env.UNDERSTUDY_TEST_CACHE ?? '/var/cache/understudy-test';

/** The versions apt knows for a package on this host, newest first (apt-cache policy, or madison). */
export async function archiveVersions(pkg: string): Promise<string[]> {
  const out = await exec(['apt-cache', 'madison', pkg]);
  return out.stdout
    .split('\n')
    .map((l) => l.split('|')[1]?.trim())
    .filter((v): v is string => Boolean(v));
}

/** Debian version comparison (dpkg --compare-versions). */
export async function versionGreater(a: string, b: string): Promise<boolean> {
  return (await exec(['dpkg', '--compare-versions', a, 'gt', b], { okCodes: [0, 1] })).exitCode === 0;
}

/** `apt-get download pkg=version`, cached; resolves with the .deb's path. */
export async function downloadDeb(pkg: string, version: string): Promise<string> {
  const dir = path.join(testCacheDir, 'debs');
  fs.mkdirSync(dir, { recursive: true });
  const cached = fs.readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  const wanted = (f: string): boolean =>
    f.startsWith(`${pkg}_${version.replace(/:/g, '%3a')}_`) && f.endsWith('.deb');
  if (cached && wanted(cached)) return path.join(dir, cached);
  const work = fs.mkdtempSync(path.join(dir, '.download-'));
  try {
    await exec(['apt-get', 'download', '-q', `${pkg}=${version}`], { cwd: work, timeoutMs: 300_000 });
    const [file] = fs.readdirSync(work).filter((f) => f.endsWith('.deb'));
    if (!file) throw new Error(`apt-get download ${pkg}=${version} left no .deb`);
    fs.renameSync(path.join(work, file), path.join(dir, file));
    return path.join(dir, file);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * A real .deb repacked with another version (and its exact `(= old)` dependencies on the set moved along).
 * `edit` may change the unpacked tree first (its control files are under DEBIAN/); the result is written
 * to `outDir` (default: beside `file`).
 */
export async function repackDeb(
  file: string,
  version: string,
  set: readonly string[],
  options: { edit?: (root: string) => void; outDir?: string } = {},
): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-repack-'));
  try {
    const root = path.join(work, 'root');
    await exec(['dpkg-deb', '-R', file, root]);
    options.edit?.(root);
    const control = path.join(root, 'DEBIAN/control');
    const text = fs.readFileSync(control, 'utf8');
    const old = /^Version: (.+)$/m.exec(text)?.[1] ?? '';
    let next = text.replace(/^Version: .+$/m, `Version: ${version}`);
    for (const pkg of set) next = next.replaceAll(`${pkg} (= ${old})`, `${pkg} (= ${version})`);
    fs.writeFileSync(control, next);
    const pkg = /^Package: (.+)$/m.exec(text)?.[1] ?? 'package';
    const out = path.join(
      options.outDir ?? path.dirname(file),
      `${pkg}_${version.replace(/:/g, '%3a')}_repacked.deb`,
    );
    await exec(['dpkg-deb', '--root-owner-group', '-b', root, out]);
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export interface PatchSet {
  files: string[];
  from: string;
  to: string;
  /** True when the archives had no newer version and the packages were repacked with a bumped one. */
  repacked: boolean;
}

/** The newest version of each package of `set` (they share one source version), from the archives. */
export async function securityUpdate(set: readonly string[], installed: string): Promise<PatchSet> {
  const [newest] = await archiveVersions(set[0] ?? '');
  if (newest && (await versionGreater(newest, installed))) {
    const files = [];
    for (const pkg of set) files.push(await downloadDeb(pkg, newest));
    return { files, from: installed, to: newest, repacked: false };
  }
  const bumped = `${installed}+understudy1`;
  const files = [];
  for (const pkg of set) files.push(await repackDeb(await downloadDeb(pkg, installed), bumped, set));
  return { files, from: installed, to: bumped, repacked: true };
}
