/**
 * Real Debian system images: debootstrap of a suite with systemd as init and the packages the operator
 * asks for, from the host's configured Debian archive. The debootstrapped tree is cached as a tarball
 * keyed by its inputs — suite, package list, archive URL and the archive's snapshot (the Date of the
 * suite's Release file) — so a second build of the same inputs does not fetch anything. A debootstrap
 * that fails half-way leaves nothing in the cache.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, exec, isUnderstudyError } from '../core/index.ts';
import { debootstrapLine, type ImageProgress } from './progress.ts';

/** What every system image gets besides the operator's packages. */
export const basePackages = ['systemd', 'systemd-sysv', 'iproute2', 'procps'] as const;

export interface DebianSystemInputs {
  suite: string;
  packages: readonly string[];
  mirror: string;
}

export interface ResolvedDebianSystemInputs extends DebianSystemInputs {
  /** The archive's Release Date for the suite: what "the same archive" means for the cache. */
  snapshot: string;
  /** Hash of all inputs; names the cached tree. */
  key: string;
}

/** The Debian archive of the host's apt sources (deb822 files or one-line sources.list), not security. */
export function hostDebianMirror(aptDir = '/etc/apt'): string {
  const uris: string[] = [];
  const listDir = path.join(aptDir, 'sources.list.d');
  const files = [
    path.join(aptDir, 'sources.list'),
    ...(fs.existsSync(listDir)
      ? fs
          .readdirSync(listDir)
          .sort()
          .map((f) => path.join(listDir, f))
      : []),
  ].filter((f) => /\.(list|sources)$/.test(f) && fs.existsSync(f));
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        if (/^Enabled:\s*no/im.test(stanza)) continue;
        const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
        if (uri) uris.push(uri);
      }
    } else {
      for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/gm)) if (m[1]) uris.push(m[1]);
    }
  }
  const archive = uris.find((u) => /\/debian\/?$/.test(u) && !u.includes('security'));
  return (archive ?? 'http://deb.debian.org/debian').replace(/\/$/, '');
}

export function normalisePackages(packages: readonly string[]): string[] {
  const bad = packages.filter((p) => !/^[a-z0-9][a-z0-9+.-]+$/.test(p));
  if (bad.length > 0)
    throw new UnderstudyError('INVALID_ARGUMENT', `Not a Debian package name: ${bad.join(', ')}`, {
      hint: 'Give package names separated by commas, e.g. --packages nginx,curl',
    });
  return [...new Set(packages)].sort();
}

/** Reads the suite's Release file from the archive; an unknown suite is a clear error. */
export async function archiveSnapshot(mirror: string, suite: string): Promise<string> {
  if (!/^[a-z][a-z0-9-]*$/.test(suite))
    throw new UnderstudyError('IMAGE_SUITE_UNKNOWN', `"${suite}" is not a Debian suite name`);
  const url = `${mirror}/dists/${suite}/Release`;
  const result = await exec(['curl', '-fsS', '--max-time', '60', url], { okCodes: [0, 22] });
  if (result.exitCode === 22) {
    throw new UnderstudyError(
      'IMAGE_SUITE_UNKNOWN',
      `The archive ${mirror} has no suite "${suite}" (${url})`,
      {
        hint: 'Use a suite the archive has, e.g. bookworm or trixie.',
      },
    );
  }
  const date = /^Date:\s*(.+)$/m.exec(result.stdout)?.[1]?.trim();
  if (!date) throw new UnderstudyError('IMAGE_BUILD_FAILED', `The Release file at ${url} has no Date field`);
  return date;
}

export async function resolveDebianSystemInputs(
  inputs: DebianSystemInputs,
): Promise<ResolvedDebianSystemInputs> {
  const packages = normalisePackages(inputs.packages);
  const snapshot = await archiveSnapshot(inputs.mirror, inputs.suite);
  const key = crypto
    .createHash('sha256')
    .update(
      JSON.stringify({ suite: inputs.suite, packages, mirror: inputs.mirror, snapshot, base: basePackages }),
    )
    .digest('hex')
    .slice(0, 16);
  return { ...inputs, packages, snapshot, key };
}

const minFreeBytes = 1536 * 1024 ** 2;

function requireSpace(dir: string, what: string): void {
  const stat = fs.statfsSync(dir);
  const free = stat.bavail * stat.bsize;
  if (free < minFreeBytes) {
    throw new UnderstudyError(
      'IMAGE_NO_SPACE',
      `${what} ${dir} has ${(free / 1024 ** 2).toFixed(0)} MiB free; building a Debian image needs ${minFreeBytes / 1024 ** 2} MiB`,
      { hint: 'Free space there (or remove old images with `understudy image remove`).' },
    );
  }
}

/** Turns debootstrap's failure output into the error the operator can act on. */
function debootstrapError(
  inputs: ResolvedDebianSystemInputs,
  output: string,
  cause: unknown,
): UnderstudyError {
  const missing = /Couldn't find these debs: (.+)/.exec(output)?.[1]?.trim();
  if (missing) {
    return new UnderstudyError(
      'IMAGE_PACKAGE_UNAVAILABLE',
      `The archive ${inputs.mirror} has no package ${missing.split(/\s+/).join(', ')} in ${inputs.suite}`,
      { cause, hint: `Check the name with \`apt-cache policy <package>\`, or pick another suite.` },
    );
  }
  const notFetched = /Couldn't download packages: (.+)/.exec(output)?.[1]?.trim().split(/\s+/);
  if (notFetched) {
    const first = /Couldn't download package (\S+) \(ver \S+ arch \S+\) at (\S+)/.exec(output);
    const named = notFetched.slice(0, 5).join(', ') + (notFetched.length > 5 ? ', …' : '');
    return new UnderstudyError(
      'IMAGE_BUILD_FAILED',
      `debootstrap of ${inputs.suite} stopped half-way: the archive ${inputs.mirror} did not deliver ${notFetched.length} package(s) (${named})${first ? `; the first that failed: ${first[1]} at ${first[2]}` : ''}; the partial tree was removed`,
      {
        cause,
        hint: 'Check that the archive answers (`apt-get update`; the mirror is the first Debian source in /etc/apt/sources.list[.d], or UNDERSTUDY_DEBIAN_MIRROR), then build again.',
      },
    );
  }
  if (/No space left on device/.test(output)) {
    return new UnderstudyError('IMAGE_NO_SPACE', `debootstrap of ${inputs.suite} ran out of disk space`, {
      cause,
      hint: 'Free space in the image cache directory and try again; nothing half-built was kept.',
    });
  }
  const tail = output.trim().split('\n').slice(-8).join('\n');
  return new UnderstudyError('IMAGE_BUILD_FAILED', `debootstrap of ${inputs.suite} failed:\n${tail}`, {
    cause,
  });
}

/**
 * The cached tarball of the debootstrapped tree for these inputs, made when missing. Returns its path
 * and whether it was already cached.
 */
export async function debootstrapCached(options: {
  inputs: ResolvedDebianSystemInputs;
  cacheDir: string;
  progress: ImageProgress;
  signal?: AbortSignal;
}): Promise<{ tarball: string; cached: boolean }> {
  const { inputs, cacheDir } = options;
  const tarball = path.join(cacheDir, `debian-${inputs.suite}-${inputs.key}.tar`);
  if (fs.existsSync(tarball)) return { tarball, cached: true };
  fs.mkdirSync(cacheDir, { recursive: true });
  requireSpace(cacheDir, 'The image cache');
  const work = path.join(cacheDir, `.debootstrap-${inputs.key}-${crypto.randomBytes(3).toString('hex')}`);
  const include = [...basePackages, ...inputs.packages].join(',');
  options.progress(`debootstrap ${inputs.suite} from ${inputs.mirror} with ${include}`, 'debootstrap');
  try {
    try {
      await exec(
        ['debootstrap', '--variant=minbase', `--include=${include}`, inputs.suite, work, inputs.mirror],
        {
          timeoutMs: 30 * 60_000,
          signal: options.signal,
          onStdoutLine: (line) => debootstrapLine(line, options.progress),
        },
      );
    } catch (error) {
      if (isUnderstudyError(error, 'EXEC_FAILED')) {
        const log = path.join(work, 'debootstrap/debootstrap.log');
        const output = `${String(error.details.stdout ?? '')}\n${String(error.details.stderr ?? '')}\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''}\n${error.message}`;
        throw debootstrapError(inputs, output, error);
      }
      throw error;
    }
    options.progress('caching the debootstrapped tree', 'debootstrap-cache-store');
    await exec(
      ['tar', '-C', work, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-cf', `${tarball}.tmp`, '.'],
      { timeoutMs: 10 * 60_000 },
    );
    fs.writeFileSync(`${tarball}.json`, JSON.stringify(inputs, null, 2));
    fs.renameSync(`${tarball}.tmp`, tarball);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(`${tarball}.tmp`, { force: true });
  }
  return { tarball, cached: false };
}
