/**
 * An apt repository as a verified source of packages: InRelease verified with gpgv against the feed's
 * keyring and judged by gpgv's status output (a good signature from an accepted key, not expired or
 * revoked, strong digest; only the signed text is used), its Date not older than what was seen (replay)
 * nor in the future, Valid-Until not passed (freeze); the Packages indexes it vouches for fetched within
 * their declared size, checked against its SHA256 list and decompressed within a bound; a `.deb` taken
 * from it downloaded within its declared size and registered only when it matches the index's sha256.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { UnderstudyError, exec, isUnderstudyError } from '../core/index.ts';
import { sha256Hex, type Catalogue, type Patch } from '../catalogue/index.ts';
import type { AptOptions, Feed } from './feeds.ts';
import { safeUrl, type Fetcher } from './fetch.ts';
import { parsePackages, parseRelease, type PackageEntry, type ReleaseInfo } from './apt-index.ts';
import { judgeGpgvStatus } from './gpgv-status.ts';
import { defaultFeedTimeoutMs, defaultMaxPatchBytes, maxClockSkewMs } from './poll-patch-server.ts';

const maxInReleaseBytes = 16 * 1024 * 1024;
/** A compressed Packages index (bookworm main amd64: ~9 MiB gz) and what it may expand to (~45 MiB). */
const maxIndexBytes = 64 * 1024 * 1024;
const maxIndexTextBytes = 256 * 1024 * 1024;

/** The keyring of Debian's `debian-archive-keyring` package: the trust anchor of the Debian archives. */
export const debianArchiveKeyring = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface AptIndexContext {
  fetcher: Fetcher;
  /** Scratch directory (gpgv's work files). */
  workDir: string;
  now: () => Date;
  signal?: AbortSignal;
  /** Conditional request and replay check against what an earlier poll saw (all optional). */
  etag?: string | null;
  lastModified?: string | null;
  watermark?: string | null;
}

export type AptIndex =
  | { status: 'not-modified' }
  | {
      status: 'ok';
      release: ReleaseInfo;
      /** The entries of every component and architecture of the feed, each with the feed it came from. */
      entries: FeedPackage[];
      /** Digest over the Packages digests: equal digests, equal content. */
      digest: string;
      fetched: { etag: string | null; lastModified: string | null };
    };

/** A Packages entry and the feed that vouches for it (where its .deb is fetched from). */
export interface FeedPackage extends PackageEntry {
  feed: string;
}

export function aptFeedBase(feed: Feed): string {
  return feed.url.endsWith('/') ? feed.url : `${feed.url}/`;
}

/** Verifies a clearsigned InRelease with gpgv; returns the signed text only. */
async function verifyInRelease(o: {
  body: Buffer;
  options: AptOptions;
  workDir: string;
  url: string;
}): Promise<string> {
  const { body, workDir, url } = o;
  const keyring = o.options.keyring;
  try {
    await fs.access(keyring);
  } catch {
    throw new UnderstudyError(
      'FEED_SIGNATURE_INVALID',
      `The keyring ${keyring} of the feed for ${url} does not exist`,
      {
        hint:
          keyring === debianArchiveKeyring
            ? 'Install it: apt-get install debian-archive-keyring'
            : 'Check the --keyring path of the feed.',
      },
    );
  }
  const dir = path.join(workDir, `gpgv-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    const signed = path.join(dir, 'InRelease');
    const output = path.join(dir, 'Release');
    await fs.writeFile(signed, body);
    let status: string;
    try {
      status = (
        await exec(
          ['gpgv', '--status-fd', '1', '--keyring', path.resolve(keyring), '--output', output, signed],
          { timeoutMs: 30_000 },
        )
      ).stdout;
    } catch (error) {
      if (isUnderstudyError(error, 'EXEC_FAILED')) {
        const reason = String(error.details.stderr ?? '')
          .split('\n')
          .filter(Boolean)
          .slice(-2)
          .join('; ');
        throw new UnderstudyError(
          'FEED_SIGNATURE_INVALID',
          `InRelease of ${url} does not verify with keyring ${keyring}${reason ? `: ${reason}` : ''}`,
          { cause: error },
        );
      }
      throw error;
    }
    const judgement = judgeGpgvStatus(
      status,
      o.options.trustKeyring ? 'any-key-in-keyring' : (o.options.fingerprints ?? []),
    );
    if (!judgement.ok)
      throw new UnderstudyError(
        'FEED_SIGNATURE_INVALID',
        `InRelease of ${url} is not signed acceptably: ${judgement.reason}`,
        {
          hint: 'Check the repository signing key: expired, revoked or not configured (--fingerprint), or a SHA-1 signature.',
        },
      );
    return await fs.readFile(output, 'utf8');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The index as text: gunzip in process, xz through xz-utils, both bounded to maxIndexTextBytes. */
async function decompressIndex(name: string, data: Buffer, url: string): Promise<Buffer> {
  const tooBig = (cause?: unknown): UnderstudyError =>
    new UnderstudyError(
      'FEED_INDEX_INVALID',
      `${url} does not decompress within ${maxIndexTextBytes} bytes${cause instanceof Error ? `: ${cause.message}` : ''}`,
      { cause },
    );
  if (name.endsWith('.gz')) {
    try {
      return gunzipSync(data, { maxOutputLength: maxIndexTextBytes });
    } catch (error) {
      throw tooBig(error);
    }
  }
  if (name.endsWith('.xz')) {
    const out = await exec(['xz', '--decompress', '--stdout'], {
      input: data,
      maxBuffer: maxIndexTextBytes + 1,
      timeoutMs: 120_000,
    });
    const text = Buffer.from(out.stdout, 'utf8');
    if (text.length > maxIndexTextBytes) throw tooBig();
    return text;
  }
  return data;
}

/**
 * Fetches one Packages index in a form the Release lists (gz, then xz, then plain: a listed form the
 * mirror does not serve, 404, is skipped as apt skips it), within its listed size and checked against
 * its listed sha256.
 */
async function fetchListedIndex(o: {
  stem: string;
  release: ReleaseInfo;
  distUrl: string;
  inReleaseUrl: string;
  ctx: AptIndexContext;
  timeoutMs: number;
}): Promise<{ name: string; body: Buffer }> {
  const { stem, release, distUrl, ctx } = o;
  const listed = [`${stem}.gz`, `${stem}.xz`, stem].filter((f) => release.files.has(f));
  if (listed.length === 0)
    throw new UnderstudyError(
      'FEED_INDEX_INVALID',
      `InRelease of ${safeUrl(o.inReleaseUrl)} lists no ${stem}`,
    );
  let notServed: UnderstudyError | undefined;
  for (const name of listed) {
    const entry = release.files.get(name) as { sha256: string; size: number };
    if (entry.size > maxIndexBytes)
      throw new UnderstudyError(
        'PATCH_TOO_LARGE',
        `${safeUrl(distUrl)}${name} is ${entry.size} bytes, more than the limit of ${maxIndexBytes}`,
      );
    let got;
    try {
      got = await ctx.fetcher.fetch({
        url: new URL(name, distUrl).toString(),
        maxBytes: entry.size,
        timeoutMs: o.timeoutMs,
        signal: ctx.signal,
      });
    } catch (error) {
      if (isUnderstudyError(error, 'FEED_UNREACHABLE') && error.details.status === 404) {
        notServed = error;
        continue;
      }
      throw error;
    }
    if (got.status !== 'ok')
      throw new UnderstudyError('FEED_UNREACHABLE', `${safeUrl(distUrl)}${name}: unexpected Not Modified`);
    if (sha256Hex(got.body) !== entry.sha256)
      throw new UnderstudyError(
        'PATCH_HASH_MISMATCH',
        `${safeUrl(distUrl)}${name} does not match the sha256 in InRelease`,
      );
    return { name, body: got.body };
  }
  throw notServed as UnderstudyError;
}

/**
 * Fetches and verifies the feed's index (see the file comment). Throws FEED_UNREACHABLE,
 * FEED_SIGNATURE_INVALID, FEED_REPLAY, FEED_DATE_INVALID, FEED_INDEX_INVALID, PATCH_HASH_MISMATCH or
 * PATCH_TOO_LARGE; nothing unverified is returned.
 */
export async function fetchAptIndex(feed: Feed, ctx: AptIndexContext): Promise<AptIndex> {
  const o = feed.options as AptOptions;
  const timeoutMs = o.timeoutMs ?? defaultFeedTimeoutMs;
  const distUrl = new URL(`dists/${o.suite}/`, aptFeedBase(feed)).toString();
  const inReleaseUrl = `${distUrl}InRelease`;
  const fetched = await ctx.fetcher.fetch({
    url: inReleaseUrl,
    etag: ctx.etag,
    lastModified: ctx.lastModified,
    maxBytes: maxInReleaseBytes,
    timeoutMs,
    signal: ctx.signal,
  });
  if (fetched.status === 'not-modified') return { status: 'not-modified' };
  const text = await verifyInRelease({
    body: fetched.body,
    options: o,
    workDir: ctx.workDir,
    url: safeUrl(inReleaseUrl),
  });
  const release = parseRelease(text, safeUrl(inReleaseUrl));
  const now = ctx.now();
  if (ctx.watermark && release.date.getTime() < Date.parse(ctx.watermark)) {
    throw new UnderstudyError(
      'FEED_REPLAY',
      `InRelease of ${safeUrl(inReleaseUrl)} is dated ${release.date.toISOString()}, older than ${ctx.watermark} already seen (replay?)`,
    );
  }
  if (release.date.getTime() > now.getTime() + maxClockSkewMs) {
    throw new UnderstudyError(
      'FEED_DATE_INVALID',
      `InRelease of ${safeUrl(inReleaseUrl)} is dated ${release.date.toISOString()}, in the future`,
    );
  }
  if (release.validUntil && release.validUntil.getTime() < now.getTime()) {
    throw new UnderstudyError(
      'FEED_REPLAY',
      `InRelease of ${safeUrl(inReleaseUrl)} expired at ${release.validUntil.toISOString()} (Valid-Until)`,
    );
  }
  const digests: string[] = [];
  const entries: FeedPackage[] = [];
  for (const component of o.components) {
    for (const arch of o.architectures) {
      const stem = `${component}/binary-${arch}/Packages`;
      const { name, body } = await fetchListedIndex({ stem, release, distUrl, ctx, timeoutMs, inReleaseUrl });
      digests.push((release.files.get(name) as { sha256: string }).sha256);
      const where = `${safeUrl(distUrl)}${name}`;
      const textIndex = await decompressIndex(name, body, where);
      for (const e of parsePackages(textIndex.toString('utf8'), where))
        entries.push({ ...e, feed: feed.name });
    }
  }
  return {
    status: 'ok',
    release,
    entries,
    digest: sha256Hex(digests.join('\n')),
    fetched: { etag: fetched.etag, lastModified: fetched.lastModified },
  };
}

/** The patch name of a package version: `<package>_<version>_<arch>`. */
export function debPatchName(p: Pick<PackageEntry, 'package' | 'version' | 'architecture'>): string {
  return `${p.package}_${p.version}_${p.architecture}`.replace(/[^A-Za-z0-9._+~:-]/g, '_');
}

export interface RegisterDebOptions {
  entry: PackageEntry;
  feed: Feed;
  catalogue: Catalogue;
  fetcher: Fetcher;
  workDir: string;
  security: boolean;
  publishedAt?: string;
  firstSeenAt?: string;
  signal?: AbortSignal;
}

/**
 * Downloads the entry's .deb from the feed (at most its declared size) and registers it as a `deb` patch;
 * the catalogue refuses it unless its sha256 is the index's. Throws PATCH_TOO_LARGE, FEED_UNREACHABLE,
 * PATCH_HASH_MISMATCH.
 */
export async function registerDebFromFeed(
  o: RegisterDebOptions,
): Promise<{ patch: Patch; created: boolean }> {
  const { entry: e, feed } = o;
  const options = feed.options as AptOptions;
  const maxPatchBytes = options.maxPatchBytes ?? defaultMaxPatchBytes;
  const name = debPatchName(e);
  const existing = o.catalogue.hasPatch(name) ? o.catalogue.getPatch(name) : undefined;
  if (existing?.sha256 === e.sha256) return { patch: existing, created: false };
  if (e.size > maxPatchBytes)
    throw new UnderstudyError(
      'PATCH_TOO_LARGE',
      `${e.package} ${e.version} is ${e.size} bytes, more than the limit of ${maxPatchBytes}`,
    );
  await fs.mkdir(o.workDir, { recursive: true, mode: 0o700 });
  const temp = path.join(o.workDir, `deb-${randomBytes(6).toString('hex')}`);
  try {
    const url = new URL(e.filename, aptFeedBase(feed)).toString();
    await o.fetcher.download({
      url,
      file: temp,
      maxBytes: e.size,
      timeoutMs: options.timeoutMs ?? defaultFeedTimeoutMs,
      signal: o.signal,
    });
    return await o.catalogue.registerPatch({
      file: temp,
      name,
      categories: o.security ? ['security'] : ['bugfix'],
      format: 'deb',
      sha256: e.sha256,
      source: { feed: feed.name, url: safeUrl(url) },
      description: e.description.split('\n')[0] ?? '',
      package: e.package,
      version: e.version,
      publishedAt: o.publishedAt,
      firstSeenAt: o.firstSeenAt,
    });
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/** Whether the feed's packages count as security updates (`--security`, or the suite's name says so). */
export function feedIsSecurity(feed: Feed, release?: ReleaseInfo): boolean {
  const o = feed.options as AptOptions;
  return o.security ?? /security/i.test(`${o.suite} ${release?.suite ?? ''}`);
}
