/**
 * Pending Debian updates of one LC (seed 1802–1803 for one logical computer): from the LC's own dpkg
 * status, against the verified indexes of the monitor's apt feeds, the set of binary packages that must
 * be upgraded together (upgrade-plan.ts) and, when applied, exactly those `.deb` files downloaded, checked
 * against the index's sha256, registered as `deb` patches and marked for the LC's next patch run.
 */
import { UnderstudyError } from '../core/index.ts';
import type { Catalogue, Patch } from '../catalogue/index.ts';
import type { Db } from '../store/index.ts';
import { getFeedState, listFeeds, type Feed } from './feeds.ts';
import type { Fetcher } from './fetch.ts';
import { feedIsSecurity, fetchAptIndex, registerDebFromFeed, type FeedPackage } from './apt-feed.ts';
import { parseDpkgStatus, type InstalledPackage } from './dpkg-status.ts';
import { planUpgrade, type PlannedRemoval, type PlannedUpgrade, type UpgradePlan } from './upgrade-plan.ts';

export interface PendingUpdatesOptions {
  db: Db;
  catalogue: Catalogue;
  fetcher: Fetcher;
  /** Scratch directory (gpgv files, downloads). */
  workDir: string;
  now?: () => Date;
  signal?: AbortSignal;
  lc: string;
  /** The bytes of the LC's /var/lib/dpkg/status, read inside its root by the caller. */
  dpkgStatus: Buffer;
  /** The apt feeds to use (default: every apt feed). */
  feeds?: readonly string[];
  /** Download, register and mark the plan's packages for the LC's next run. */
  apply?: boolean;
}

export interface PendingUpdate extends Omit<PlannedUpgrade, 'entry'> {
  /** The feed whose verified index carries the candidate. */
  feed: string;
  filename: string;
  size: number;
  sha256: string;
}

export interface PendingUpdates {
  lc: string;
  architecture: string;
  feeds: string[];
  updates: PendingUpdate[];
  held: string[];
  /** Installed packages a new version conflicts with and replaces: the transaction removes them. */
  removals: PlannedRemoval[];
  /** With apply: the deb patches registered (or already there) and marked for the LC's next run. */
  patches: Patch[];
}

/** The native architecture of a Debian system: that of its dpkg package. */
function nativeArchitecture(installed: readonly InstalledPackage[], lc: string): string {
  const arch = installed.find((p) => p.name === 'dpkg')?.architecture;
  if (!arch)
    throw new UnderstudyError('DPKG_STATUS_INVALID', `The dpkg status of ${lc} does not list dpkg itself`);
  return arch;
}

function aptFeeds(db: Db, names: readonly string[] | undefined): Feed[] {
  const all = listFeeds(db).filter((f) => f.kind === 'apt');
  if (!names || names.length === 0) {
    if (all.length === 0)
      throw new UnderstudyError('FEED_NOT_FOUND', 'There is no apt feed to compute updates from', {
        hint: 'Add one: understudy feed add debsec --kind apt --from-host-sources',
      });
    return all;
  }
  return names.map((name) => {
    const feed = all.find((f) => f.name === name);
    if (!feed) throw new UnderstudyError('FEED_NOT_FOUND', `There is no apt feed named "${name}"`);
    return feed;
  });
}

/**
 * Computes (and with `apply` registers) the LC's pending updates. Throws DPKG_STATUS_INVALID, the feed
 * errors of fetchAptIndex, UPDATE_PACKAGE_NOT_IN_FEED and UPDATE_DEPENDENCY_UNSATISFIABLE; nothing is
 * registered unless the whole set is known to be satisfiable.
 */
export async function pendingUpdates(o: PendingUpdatesOptions): Promise<PendingUpdates> {
  const now = o.now ?? (() => new Date());
  const installed = parseDpkgStatus(o.dpkgStatus, o.lc);
  const architecture = nativeArchitecture(installed, o.lc);
  const feeds = aptFeeds(o.db, o.feeds);
  const available: FeedPackage[] = [];
  const security = new Map<string, boolean>();
  for (const feed of feeds) {
    const index = await fetchAptIndex(feed, {
      fetcher: o.fetcher,
      workDir: o.workDir,
      now,
      signal: o.signal,
      watermark: getFeedState(o.db, feed.name).watermark,
    });
    if (index.status !== 'ok')
      throw new UnderstudyError('INTERNAL', 'unconditional fetch answered Not Modified');
    available.push(...index.entries);
    security.set(feed.name, feedIsSecurity(feed, index.release));
  }
  const plan: UpgradePlan = planUpgrade({ installed, available, architecture, system: o.lc });
  const updates = plan.upgrades.map(({ entry, ...rest }) => {
    const e = entry as FeedPackage;
    return { ...rest, feed: e.feed, filename: e.filename, size: e.size, sha256: e.sha256 };
  });
  const patches: Patch[] = [];
  if (o.apply) {
    for (const up of plan.upgrades) {
      const entry = up.entry as FeedPackage;
      const feed = feeds.find((f) => f.name === entry.feed) as Feed;
      const { patch } = await registerDebFromFeed({
        entry,
        feed,
        catalogue: o.catalogue,
        fetcher: o.fetcher,
        workDir: o.workDir,
        security: security.get(feed.name) ?? false,
        signal: o.signal,
      });
      patches.push(patch);
    }
    // Marked only once every file of the set is registered: the set moves together or not at all.
    for (const patch of patches) o.catalogue.markNextRun(patch.name, o.lc, true);
  }
  return {
    lc: o.lc,
    architecture,
    feeds: feeds.map((f) => f.name),
    updates,
    held: plan.held,
    removals: plan.removals,
    patches,
  };
}
