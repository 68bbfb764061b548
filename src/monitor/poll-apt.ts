/**
 * One poll of an apt repository: fetch InRelease, verify it with gpgv against the configured
 * keyring and judge gpgv's status output (a good signature from a configured fingerprint, key not
 * expired or revoked, strong digest; only the verified text is used), require its Date to move
 * forward and not lie in the future, and Valid-Until not to have passed, fetch the Packages indexes it vouches for (sha256 checked), and register the
 * newest version of each package installed in a managed LC that is newer than the installed one,
 * as a `deb` patch (the .deb is downloaded and checked against the sha256 of the index).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { UnderstudyError, exec, isUnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { sha256Hex } from '../catalogue/index.ts';
import type { AptOptions, Feed, FeedState } from './feeds.ts';
import { safeUrl } from './fetch.ts';
import { parsePackages, parseRelease, type PackageEntry } from './apt-index.ts';
import { compareDebianVersions } from './debian-version.ts';
import { judgeGpgvStatus } from './gpgv-status.ts';
import {
  defaultFeedTimeoutMs,
  defaultMaxPatchBytes,
  maxClockSkewMs,
  type PollContext,
  type PollResult,
} from './poll-patch-server.ts';
import type { ManagedLcs } from './lcs.ts';

const maxIndexBytes = 256 * 1024 * 1024;
/** An LC reporting more installed packages than this is not believed at all. */
const maxReportedPackages = 10_000;
const defaultMaxDownloadsPerPoll = 10;
/** Debian policy: package names are lower case, start alphanumeric, at most a sane length. */
const packageNamePattern = /^[a-z0-9][a-z0-9+.-]{0,99}$/;
/** Debian policy version syntax ([epoch:]upstream[-revision]), bounded in length. */
const versionPattern = /^(?:[0-9]{1,9}:)?[0-9][A-Za-z0-9.+~-]{0,126}$/;

/**
 * What is installed where, as the managed LCs report it (package → lowest installed version). The
 * report comes from inside the LC, so it is validated: invalid names and versions are dropped, and a
 * report larger than maxReportedPackages is ignored whole. With an allow-list, only its packages count.
 */
async function installedPackages(
  ctx: AptPollContext,
  allow: readonly string[] | undefined,
): Promise<Map<string, string>> {
  const installed = new Map<string, string>();
  for (const lc of await ctx.managedLcs.list()) {
    const report = await ctx.managedLcs.installedPackages(lc);
    if (report.size > maxReportedPackages) {
      ctx.logger.warn(
        { event: 'lc.report_refused', lc, packages: report.size, limit: maxReportedPackages },
        'an LC reported implausibly many installed packages; its report is ignored',
      );
      continue;
    }
    let dropped = 0;
    for (const [pkg, version] of report) {
      if (!packageNamePattern.test(pkg) || !versionPattern.test(version)) {
        dropped++;
        continue;
      }
      if (allow && !allow.includes(pkg)) continue;
      const known = installed.get(pkg);
      if (!known || compareDebianVersions(version, known) < 0) installed.set(pkg, version);
    }
    if (dropped > 0)
      ctx.logger.warn(
        { event: 'lc.report_invalid', lc, dropped },
        'invalid package entries in an LC report ignored',
      );
  }
  return installed;
}

export interface AptPollContext extends PollContext {
  db: Db;
  managedLcs: ManagedLcs;
}

function failed(error: unknown): PollResult {
  if (!isUnderstudyError(error)) throw error;
  return {
    outcome: 'failed',
    registered: 0,
    registeredNames: [],
    failures: [{ code: error.code, message: error.message }],
    error: { code: error.code, message: error.message },
  };
}

/** Verifies a clearsigned InRelease with gpgv; returns the signed text only. */
async function verifyInRelease(o: {
  body: Buffer;
  keyring: string;
  fingerprints: readonly string[];
  workDir: string;
  url: string;
}): Promise<string> {
  const { body, keyring, workDir, url } = o;
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
          {
            timeoutMs: 30_000,
          },
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
    const judgement = judgeGpgvStatus(status, o.fingerprints);
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

function candidateName(p: PackageEntry): string {
  return `${p.package}_${p.version}_${p.architecture}`.replace(/[^A-Za-z0-9._+~:-]/g, '_');
}

export async function pollApt(feed: Feed, state: FeedState, ctx: AptPollContext): Promise<PollResult> {
  const o = feed.options as AptOptions;
  const timeoutMs = o.timeoutMs ?? defaultFeedTimeoutMs;
  const maxPatchBytes = o.maxPatchBytes ?? defaultMaxPatchBytes;
  const base = feed.url.endsWith('/') ? feed.url : `${feed.url}/`;
  const distUrl = new URL(`dists/${o.suite}/`, base).toString();
  const inReleaseUrl = `${distUrl}InRelease`;
  let release: ReturnType<typeof parseRelease>;
  let fetched;
  const entries: PackageEntry[] = [];
  let digest: string;
  try {
    fetched = await ctx.fetcher.fetch({
      url: inReleaseUrl,
      etag: state.etag,
      lastModified: state.lastModified,
      maxBytes: 16 * 1024 * 1024,
      timeoutMs,
      signal: ctx.signal,
    });
    if (fetched.status === 'not-modified')
      return { outcome: 'not-modified', registered: 0, registeredNames: [], failures: [] };
    const text = await verifyInRelease({
      body: fetched.body,
      keyring: o.keyring,
      fingerprints: o.fingerprints ?? [],
      workDir: ctx.workDir,
      url: safeUrl(inReleaseUrl),
    });
    release = parseRelease(text, safeUrl(inReleaseUrl));
    const now = ctx.now();
    if (state.watermark && release.date.getTime() < Date.parse(state.watermark)) {
      throw new UnderstudyError(
        'FEED_REPLAY',
        `InRelease of ${safeUrl(inReleaseUrl)} is dated ${release.date.toISOString()}, older than ${state.watermark} already seen (replay?)`,
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
    for (const component of o.components) {
      for (const arch of o.architectures) {
        const stem = `${component}/binary-${arch}/Packages`;
        const choice = [`${stem}.gz`, stem].find((f) => release.files.has(f));
        const listed = choice ? release.files.get(choice) : undefined;
        if (!choice || !listed)
          throw new UnderstudyError(
            'FEED_INDEX_INVALID',
            `InRelease of ${safeUrl(inReleaseUrl)} lists no ${stem}`,
          );
        digests.push(listed.sha256);
        const got = await ctx.fetcher.fetch({
          url: new URL(choice, distUrl).toString(),
          maxBytes: Math.min(maxIndexBytes, listed.size),
          timeoutMs,
          signal: ctx.signal,
        });
        if (got.status !== 'ok')
          throw new UnderstudyError(
            'FEED_UNREACHABLE',
            `${safeUrl(distUrl)}${choice}: unexpected Not Modified`,
          );
        if (sha256Hex(got.body) !== listed.sha256)
          throw new UnderstudyError(
            'PATCH_HASH_MISMATCH',
            `${safeUrl(distUrl)}${choice} does not match the sha256 in InRelease`,
          );
        const textIndex = choice.endsWith('.gz')
          ? gunzipSync(got.body).toString('utf8')
          : got.body.toString('utf8');
        entries.push(...parsePackages(textIndex, `${safeUrl(distUrl)}${choice}`));
      }
    }
    digest = sha256Hex(digests.join('\n'));
  } catch (error) {
    return failed(error);
  }
  const cursor = {
    etag: fetched.etag,
    lastModified: fetched.lastModified,
    watermark: release.date.toISOString(),
    indexGenerated: release.date.toISOString(),
    indexDigest: digest,
  };
  if (digest === state.indexDigest)
    return { outcome: 'ok', registered: 0, registeredNames: [], failures: [], cursor };

  const installed = await installedPackages(ctx, o.packages);
  const newest = new Map<string, PackageEntry>();
  for (const e of entries) {
    const have = installed.get(e.package);
    if (!have || compareDebianVersions(e.version, have) <= 0) continue;
    const key = `${e.package}/${e.architecture}`;
    const best = newest.get(key);
    if (!best || compareDebianVersions(e.version, best.version) > 0) newest.set(key, e);
  }
  const security = o.security ?? /security/i.test(`${o.suite} ${release.suite ?? ''}`);
  const at = ctx.now().toISOString();
  const seen = ctx.db.prepare(
    'INSERT OR IGNORE INTO apt_versions_seen (feed, package, version, arch, first_seen_at) VALUES (?, ?, ?, ?, ?)',
  );
  const firstSeen = ctx.db.prepare(
    'SELECT first_seen_at AS at FROM apt_versions_seen WHERE feed = ? AND package = ? AND version = ? AND arch = ?',
  );
  const registeredNames: string[] = [];
  const failures: PollResult['failures'] = [];
  await fs.mkdir(ctx.workDir, { recursive: true, mode: 0o700 });
  for (const e of newest.values()) seen.run(feed.name, e.package, e.version, e.architecture, at);
  const maxDownloads = o.maxDownloadsPerPoll ?? defaultMaxDownloadsPerPoll;
  const pending = [...newest.values()]
    .filter((e) => !ctx.catalogue.hasPatch(candidateName(e)))
    .sort((a, b) => candidateName(a).localeCompare(candidateName(b)));
  const deferred = pending.length - maxDownloads;
  if (deferred > 0)
    ctx.logger.info(
      { event: 'feed.deferred', feed: feed.name, deferred, maxDownloadsPerPoll: maxDownloads },
      'more new packages than one poll downloads; the rest at the next polls',
    );
  for (const e of pending.slice(0, maxDownloads)) {
    const name = candidateName(e);
    const temp = path.join(ctx.workDir, `deb-${randomBytes(6).toString('hex')}`);
    try {
      if (e.size > maxPatchBytes)
        throw new UnderstudyError(
          'PATCH_TOO_LARGE',
          `${e.package} ${e.version} is ${e.size} bytes, more than the limit of ${maxPatchBytes}`,
        );
      const url = new URL(e.filename, base).toString();
      await ctx.fetcher.download({ url, file: temp, maxBytes: e.size, timeoutMs, signal: ctx.signal });
      const { created } = await ctx.catalogue.registerPatch({
        file: temp,
        name,
        categories: security ? ['security'] : ['bugfix'],
        format: 'deb',
        sha256: e.sha256,
        source: { feed: feed.name, url: safeUrl(url) },
        description: e.description.split('\n')[0] ?? '',
        package: e.package,
        version: e.version,
        publishedAt: release.date.toISOString(),
        firstSeenAt:
          (firstSeen.get(feed.name, e.package, e.version, e.architecture) as { at: string } | undefined)
            ?.at ?? at,
      });
      if (created) registeredNames.push(name);
    } catch (error) {
      if (!isUnderstudyError(error)) throw error;
      failures.push({ patch: name, code: error.code, message: error.message });
    } finally {
      await fs.rm(temp, { force: true });
    }
  }
  const first = failures[0];
  if (first) {
    return {
      outcome: registeredNames.length ? 'partial' : 'failed',
      registered: registeredNames.length,
      registeredNames,
      failures,
      error: { code: first.code, message: first.message },
    };
  }
  // With packages deferred, the index is not done: the next poll must look at it again.
  const done = deferred > 0 ? { ...cursor, indexDigest: null, etag: null, lastModified: null } : cursor;
  return { outcome: 'ok', registered: registeredNames.length, registeredNames, failures, cursor: done };
}
