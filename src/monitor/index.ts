/** The patch monitor (SPEC §6, Fig. 18–20): feeds, polling, notification and approval handling. */
export { monitorSchema } from './schema.ts';
export {
  createMonitor,
  type Monitor,
  type MonitorDeps,
  type MonitorStatus,
  type MonitorEvent,
  type PollTrigger,
  type ManagedLcs,
  type StartPatchRun,
} from './monitor.ts';
export {
  addFeed,
  listFeeds,
  getFeed,
  removeFeed,
  getFeedState,
  recordPoll,
  dueFeeds,
  maxBackoffSeconds,
  type Feed,
  type FeedKind,
  type FeedState,
  type PatchServerOptions,
  type AptOptions,
  type PollOutcome,
} from './feeds.ts';
export { realFetcher, safeUrl, type Fetcher, type FetchRequest, type FetchResult } from './fetch.ts';
export {
  signPatchIndex,
  verifyPatchIndex,
  parsePatchIndex,
  parseEd25519PublicKey,
  ed25519PublicKeyBase64,
  type PatchIndex,
  type PatchIndexEntry,
} from './patch-index.ts';
export { pollPatchServer, defaultMaxPatchBytes, type PollResult } from './poll-patch-server.ts';
export { pollApt } from './poll-apt.ts';
export {
  fetchAptIndex,
  debianArchiveKeyring,
  debPatchName,
  type AptIndex,
  type FeedPackage,
} from './apt-feed.ts';
export {
  readHostSources,
  parseOneLineSources,
  parseDeb822Sources,
  isSecuritySuite,
  type AptSource,
} from './host-sources.ts';
export {
  pendingUpdates,
  type PendingUpdate,
  type PendingUpdates,
  type PendingUpdatesOptions,
} from './pending-updates.ts';
export { applyDecision, autoApprove } from './decisions.ts';
export { compareDebianVersions } from './debian-version.ts';
export { parsePackages, parseRelease, type PackageEntry } from './apt-index.ts';
export { parseRelations, versionSatisfies, type Relation, type Clause } from './deb-relations.ts';
export { parseDpkgStatus, dpkgStatusPath, maxDpkgStatusBytes, type InstalledPackage } from './dpkg-status.ts';
export {
  planUpgrade,
  describeUpgradeReason,
  type UpgradePlan,
  type PlannedUpgrade,
  type PlannedRemoval,
  type UpgradeReason,
  type PlanUpgradeOptions,
} from './upgrade-plan.ts';
export {
  loadMonitorConfig,
  resolveMonitorConfig,
  defaultConfigPath,
  type ResolvedMonitorConfig,
  type Administrator,
} from './config.ts';
