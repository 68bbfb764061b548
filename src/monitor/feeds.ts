/**
 * Feeds (patch sources) and their poll state, kept in the store. A feed is polled on its own
 * schedule; after a failure the next poll backs off exponentially (interval × 2^(failures−1),
 * at most `maxBackoffSeconds`).
 */
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';

/** patch-server: a directory of patch files with a signed index (HTTP(S) or FTP); apt: a Debian/Ubuntu repository. */
export type FeedKind = 'patch-server' | 'apt';

export interface PatchServerOptions {
  /** The ed25519 public key of the index signature: base64 of the 32 raw bytes, or PEM (SPKI). */
  publicKey: string;
  indexPath?: string;
  maxPatchBytes?: number;
  timeoutMs?: number;
}

export interface AptOptions {
  suite: string;
  components: string[];
  architectures: string[];
  /** An OpenPGP keyring file (binary, as `gpg --export` writes it) for gpgv. */
  keyring: string;
  /** Fingerprints of the keys allowed to sign InRelease (a key in the keyring is not enough). */
  fingerprints?: string[];
  /**
   * Every key of the keyring may sign (apt's Signed-By rule) instead of listed fingerprints: for a
   * keyring that holds only the archive's keys, such as debian-archive-keyring's.
   */
  trustKeyring?: boolean;
  /**
   * Only these packages are looked for. Without it, the packages the managed LCs report as installed
   * are (validated and bounded: an LC's root controls that report).
   */
  packages?: string[];
  /** New packages downloaded per poll at most; the rest at the next polls (default 10). */
  maxDownloadsPerPoll?: number;
  /** Register as category security (default: when the suite name contains "security"). */
  security?: boolean;
  maxPatchBytes?: number;
  timeoutMs?: number;
}

export interface Feed {
  name: string;
  kind: FeedKind;
  url: string;
  intervalSeconds: number;
  options: PatchServerOptions | AptOptions;
  createdAt: string;
}

/** ok: polled, possibly registered patches; not-modified: nothing changed on the server; partial: some patches failed; failed: nothing was registered. */
export type PollOutcome = 'ok' | 'not-modified' | 'partial' | 'failed';

export interface FeedState {
  feed: string;
  lastPollAt: string | null;
  lastSuccessAt: string | null;
  lastOutcome: PollOutcome | null;
  lastErrorCode: string | null;
  lastError: string | null;
  consecutiveFailures: number;
  nextPollAt: string | null;
  etag: string | null;
  lastModified: string | null;
  watermark: string | null;
  indexDigest: string | null;
  /** When the last accepted index was generated (patch server `generated`, apt Release `Date`). */
  indexGenerated: string | null;
  registeredTotal: number;
}

export const maxBackoffSeconds = 6 * 3600;
const feedNamePattern = /^[a-z][a-z0-9-]{0,39}$/;

interface FeedRow {
  name: string;
  kind: FeedKind;
  url: string;
  interval_seconds: number;
  options: string;
  created_at: string;
}

function toFeed(row: FeedRow): Feed {
  return {
    name: row.name,
    kind: row.kind,
    url: row.url,
    intervalSeconds: row.interval_seconds,
    options: JSON.parse(row.options) as Feed['options'],
    createdAt: row.created_at,
  };
}

function validateUrl(kind: FeedKind, url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnderstudyError('INVALID_ARGUMENT', `Feed URL "${url}" is not a URL`);
  }
  const allowed = kind === 'apt' ? ['http:', 'https:'] : ['http:', 'https:', 'ftp:'];
  if (!allowed.includes(parsed.protocol))
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `A ${kind} feed URL must use ${allowed.join(' or ')} (got ${parsed.protocol})`,
    );
}

export function addFeed(db: Db, feed: Omit<Feed, 'createdAt'>, now = new Date()): Feed {
  if (!feedNamePattern.test(feed.name))
    throw new UnderstudyError('INVALID_ARGUMENT', `Feed name "${feed.name}" is invalid`, {
      hint: 'Use 1–40 of a-z, 0-9 and -, starting with a letter.',
    });
  validateUrl(feed.kind, feed.url);
  if (!(feed.intervalSeconds >= 1))
    throw new UnderstudyError('INVALID_ARGUMENT', 'The poll interval must be at least 1 second');
  if (feed.kind === 'patch-server' && !(feed.options as PatchServerOptions).publicKey) {
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `Feed ${feed.name}: a patch-server feed needs the index public key (--public-key)`,
    );
  }
  if (feed.kind === 'apt') {
    const o = feed.options as AptOptions;
    if (!o.suite || !o.keyring || o.components.length === 0 || o.architectures.length === 0) {
      throw new UnderstudyError(
        'INVALID_ARGUMENT',
        `Feed ${feed.name}: an apt feed needs --suite, --component, --arch and --keyring`,
      );
    }
    const fingerprints = o.fingerprints ?? [];
    if (
      (fingerprints.length === 0 && !o.trustKeyring) ||
      !fingerprints.every((f) => /^[0-9A-F]{40}$/i.test(f.replace(/\s+/g, '')))
    )
      throw new UnderstudyError(
        'INVALID_ARGUMENT',
        `Feed ${feed.name}: an apt feed needs the fingerprint(s) of its signing key(s) (--fingerprint, 40 hex digits), or a keyring of only the archive's keys (--debian-archive-keyring)`,
        { hint: 'gpg --show-keys --with-colons <keyring> lists them (fpr lines).' },
      );
  }
  const exists = db.prepare('SELECT 1 FROM feeds WHERE name = ?').get(feed.name);
  if (exists) throw new UnderstudyError('FEED_EXISTS', `A feed named "${feed.name}" already exists`);
  const at = now.toISOString();
  db.transaction(() => {
    db.prepare(
      'INSERT INTO feeds (name, kind, url, interval_seconds, options, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(feed.name, feed.kind, feed.url, Math.round(feed.intervalSeconds), JSON.stringify(feed.options), at);
    db.prepare('INSERT INTO feed_state (feed, next_poll_at) VALUES (?, ?)').run(feed.name, at);
  })();
  return getFeed(db, feed.name);
}

export function listFeeds(db: Db): Feed[] {
  return (db.prepare('SELECT * FROM feeds ORDER BY name').all() as FeedRow[]).map(toFeed);
}

export function getFeed(db: Db, name: string): Feed {
  const row = db.prepare('SELECT * FROM feeds WHERE name = ?').get(name) as FeedRow | undefined;
  if (!row) throw new UnderstudyError('FEED_NOT_FOUND', `No feed named "${name}"`);
  return toFeed(row);
}

export function removeFeed(db: Db, name: string): void {
  getFeed(db, name);
  db.prepare('DELETE FROM feeds WHERE name = ?').run(name);
}

interface StateRow {
  feed: string;
  last_poll_at: string | null;
  last_success_at: string | null;
  last_outcome: PollOutcome | null;
  last_error_code: string | null;
  last_error: string | null;
  consecutive_failures: number;
  next_poll_at: string | null;
  etag: string | null;
  last_modified: string | null;
  watermark: string | null;
  index_digest: string | null;
  index_generated: string | null;
  registered_total: number;
}

export function getFeedState(db: Db, feed: string): FeedState {
  const r = db.prepare('SELECT * FROM feed_state WHERE feed = ?').get(feed) as StateRow | undefined;
  if (!r) throw new UnderstudyError('FEED_NOT_FOUND', `No feed named "${feed}"`);
  return {
    feed: r.feed,
    lastPollAt: r.last_poll_at,
    lastSuccessAt: r.last_success_at,
    lastOutcome: r.last_outcome,
    lastErrorCode: r.last_error_code,
    lastError: r.last_error,
    consecutiveFailures: r.consecutive_failures,
    nextPollAt: r.next_poll_at,
    etag: r.etag,
    lastModified: r.last_modified,
    watermark: r.watermark,
    indexDigest: r.index_digest,
    indexGenerated: r.index_generated,
    registeredTotal: r.registered_total,
  };
}

/** What a poll learnt that must be kept for the next one (only written after a complete poll). */
export interface FeedCursor {
  etag?: string | null;
  lastModified?: string | null;
  watermark?: string | null;
  indexDigest?: string | null;
  indexGenerated?: string | null;
}

export interface PollRecord {
  outcome: PollOutcome;
  registered: number;
  error?: { code: string; message: string };
  cursor?: FeedCursor;
}

/** Records a poll's end and schedules the next one (backoff after failed/partial polls). */
export function recordPoll(db: Db, feed: Feed, record: PollRecord, now: Date): FeedState {
  const state = getFeedState(db, feed.name);
  const failed = record.outcome === 'failed' || record.outcome === 'partial';
  const failures = failed ? state.consecutiveFailures + 1 : 0;
  const delay = failed
    ? Math.min(maxBackoffSeconds, feed.intervalSeconds * 2 ** (failures - 1))
    : feed.intervalSeconds;
  const at = now.toISOString();
  // A failed or partial poll moves no cursor: the next poll starts from the last complete one.
  const cursor = failed ? {} : (record.cursor ?? {});
  db.transaction(() => {
    db.prepare(
      `UPDATE feed_state SET last_poll_at = @at, last_outcome = @outcome, consecutive_failures = @failures,
         last_success_at = CASE WHEN @failed THEN last_success_at ELSE @at END,
         last_error_code = @code, last_error = @message, next_poll_at = @next,
         etag = CASE WHEN @setEtag THEN @etag ELSE etag END,
         last_modified = CASE WHEN @setEtag THEN @lastModified ELSE last_modified END,
         watermark = CASE WHEN @setWatermark AND (watermark IS NULL OR @watermark >= watermark) THEN @watermark ELSE watermark END,
         index_generated = CASE WHEN @setGenerated AND (index_generated IS NULL OR @generated >= index_generated) THEN @generated ELSE index_generated END,
         index_digest = CASE WHEN @setDigest THEN @digest ELSE index_digest END,
         registered_total = registered_total + @registered
       WHERE feed = @feed`,
    ).run({
      at,
      outcome: record.outcome,
      failures,
      failed: failed ? 1 : 0,
      code: record.error?.code ?? null,
      message: record.error?.message ?? null,
      next: new Date(now.getTime() + delay * 1000).toISOString(),
      setEtag: 'etag' in cursor || 'lastModified' in cursor ? 1 : 0,
      etag: cursor.etag ?? null,
      lastModified: cursor.lastModified ?? null,
      setWatermark: 'watermark' in cursor ? 1 : 0,
      watermark: cursor.watermark ?? null,
      setGenerated: cursor.indexGenerated ? 1 : 0,
      generated: cursor.indexGenerated ?? null,
      setDigest: 'indexDigest' in cursor ? 1 : 0,
      digest: cursor.indexDigest ?? null,
      registered: record.registered,
      feed: feed.name,
    });
    db.prepare(
      'INSERT INTO feed_events (feed, at, outcome, code, message, registered) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(
      feed.name,
      at,
      record.outcome,
      record.error?.code ?? null,
      record.error?.message ?? null,
      record.registered,
    );
    // Keep the poll log bounded.
    db.prepare(
      'DELETE FROM feed_events WHERE feed = ? AND id NOT IN (SELECT id FROM feed_events WHERE feed = ? ORDER BY id DESC LIMIT 200)',
    ).run(feed.name, feed.name);
  })();
  return getFeedState(db, feed.name);
}

export function recentFeedEvents(
  db: Db,
  feed: string,
  limit = 20,
): { at: string; outcome: string; code: string | null; message: string | null; registered: number }[] {
  return db
    .prepare(
      'SELECT at, outcome, code, message, registered FROM feed_events WHERE feed = ? ORDER BY id DESC LIMIT ?',
    )
    .all(feed, limit) as never;
}

export function dueFeeds(db: Db, now: Date): Feed[] {
  const rows = db
    .prepare(
      'SELECT f.* FROM feeds f JOIN feed_state s ON s.feed = f.name WHERE s.next_poll_at IS NULL OR s.next_poll_at <= ? ORDER BY s.next_poll_at, f.name',
    )
    .all(now.toISOString()) as FeedRow[];
  return rows.map(toFeed);
}
