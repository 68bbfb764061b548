/**
 * Real Debian packages for the tests, fetched the way apt fetches them (`apt-get download` from the
 * host's configured archives, verified by apt against debian-archive-keyring) and cached under
 * /var/cache/understudy-test/debs/<key of the exact name=version list>, so a second run needs no network.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareDebianVersions } from '../../../src/monitor/index.ts';
import { exec } from '../../../src/core/index.ts';

const cacheRoot = path.join(process.env.UNDERSTUDY_TEST_CACHE ?? '/var/cache/understudy-test', 'debs');

/** The .deb files of exactly these `name=version`s, from the cache or downloaded by apt-get. */
export async function realDebs(specs: readonly string[]): Promise<string[]> {
  const key = crypto
    .createHash('sha256')
    .update([...specs].sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(cacheRoot, key);
  const listed = (): string[] =>
    fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => f.endsWith('.deb'))
          .map((f) => path.join(dir, f))
      : [];
  if (listed().length === specs.length) return listed();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'us-debs-'));
  fs.chmodSync(work, 0o755);
  try {
    // apt's own fetcher (as root it warns that the download is unsandboxed; that is expected here).
    await exec(['apt-get', 'download', '-q', ...specs], { cwd: work, timeoutMs: 300_000 });
    fs.mkdirSync(cacheRoot, { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(work, dir);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return listed();
}

/** Versions of a package in the host's configured archives (apt-cache madison), newest first. */
export async function archiveVersions(pkg: string): Promise<string[]> {
  const out = await exec(['apt-cache', 'madison', pkg]);
  const versions = new Set(
    out.stdout
      .split('\n')
      .map((l) => l.split('|')[1]?.trim() ?? '')
      .filter(Boolean),
  );
  return [...versions].sort((a, b) => compareDebianVersions(b, a));
}

/**
 * A real .deb rebuilt with another version (and its relations on `rename` rewritten), for when the
 * archives hold no newer version than the installed one: the contents stay Debian's.
 */
export async function repackWithVersion(o: {
  deb: string;
  version: string;
  outDir: string;
  /** Text replacements in DEBIAN/control (e.g. exact dependencies on the old version). */
  edit?: (control: string) => string;
}): Promise<string> {
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'us-repack-'));
  try {
    await exec(['dpkg-deb', '-R', o.deb, tree]);
    const controlFile = path.join(tree, 'DEBIAN/control');
    let control = fs.readFileSync(controlFile, 'utf8').replace(/^Version: .*$/m, `Version: ${o.version}`);
    if (o.edit) control = o.edit(control);
    fs.writeFileSync(controlFile, control);
    const name = /^Package: (.*)$/m.exec(control)?.[1] ?? 'pkg';
    const arch = /^Architecture: (.*)$/m.exec(control)?.[1] ?? 'amd64';
    const out = path.join(o.outDir, `${name}_${o.version}_${arch}.deb`);
    await exec(['dpkg-deb', '--root-owner-group', '-Zxz', '--build', tree, out], { timeoutMs: 120_000 });
    return out;
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
}
