/**
 * One poll of an apt repository: fetch and verify its index (apt-feed.ts: signature, replay, freeze,
 * sha256 chain), and register the newest version of each package installed in a managed LC that is
 * newer than the installed one, as a `deb` patch (downloaded and checked against the index's sha256).
 */
import { isUnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { AptOptions, Feed, FeedState } from './feeds.ts';
import type { PackageEntry } from './apt-index.ts';
import { compareDebianVersions } from './debian-version.ts';
import {
  debPatchName,
  feedIsSecurity,
  fetchAptIndex,
  registerDebFromFeed,
  type AptIndex,
} from './apt-feed.ts';
import { packageNamePattern, versionPattern } from './dpkg-status.ts';
import type { PollContext, PollResult } from './poll-patch-server.ts';
import type { ManagedLcs } from './lcs.ts';

/** An LC reporting more installed packages than this is not believed at all. */
const maxReportedPackages = 10_000;
const defaultMaxDownloadsPerPoll = 10;
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

export async function pollApt(feed: Feed, state: FeedState, ctx: AptPollContext): Promise<PollResult> {
  const o = feed.options as AptOptions;
  let index: AptIndex;
  try {
    index = await fetchAptIndex(feed, {
      ...ctx,
      etag: state.etag,
      lastModified: state.lastModified,
      watermark: state.watermark,
    });
  } catch (error) {
    return failed(error);
  }
  if (index.status === 'not-modified')
    return { outcome: 'not-modified', registered: 0, registeredNames: [], failures: [] };
  const { release, entries, digest, fetched } = index;
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
  const security = feedIsSecurity(feed, release);
  const at = ctx.now().toISOString();
  const seen = ctx.db.prepare(
    'INSERT OR IGNORE INTO apt_versions_seen (feed, package, version, arch, first_seen_at) VALUES (?, ?, ?, ?, ?)',
  );
  const firstSeen = ctx.db.prepare(
    'SELECT first_seen_at AS at FROM apt_versions_seen WHERE feed = ? AND package = ? AND version = ? AND arch = ?',
  );
  const registeredNames: string[] = [];
  const failures: PollResult['failures'] = [];
  for (const e of newest.values()) seen.run(feed.name, e.package, e.version, e.architecture, at);
  const maxDownloads = o.maxDownloadsPerPoll ?? defaultMaxDownloadsPerPoll;
  const pending = [...newest.values()]
    .filter((e) => !ctx.catalogue.hasPatch(debPatchName(e)))
    .sort((a, b) => debPatchName(a).localeCompare(debPatchName(b)));
  const deferred = pending.length - maxDownloads;
  if (deferred > 0)
    ctx.logger.info(
      { event: 'feed.deferred', feed: feed.name, deferred, maxDownloadsPerPoll: maxDownloads },
      'more new packages than one poll downloads; the rest at the next polls',
    );
  for (const e of pending.slice(0, maxDownloads)) {
    const name = debPatchName(e);
    try {
      const { created } = await registerDebFromFeed({
        entry: e,
        feed,
        catalogue: ctx.catalogue,
        fetcher: ctx.fetcher,
        workDir: ctx.workDir,
        security,
        signal: ctx.signal,
        publishedAt: release.date.toISOString(),
        firstSeenAt:
          (firstSeen.get(feed.name, e.package, e.version, e.architecture) as { at: string } | undefined)
            ?.at ?? at,
      });
      if (created) registeredNames.push(name);
    } catch (error) {
      if (!isUnderstudyError(error)) throw error;
      failures.push({ patch: name, code: error.code, message: error.message });
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
