/**
 * One poll of a patch server (SPEC §6, 1801–1803): fetch the index (conditionally), verify its
 * signature, find patches published after the last complete poll and not yet registered, download
 * each within the size limit and register it (the catalogue verifies its sha256).
 * The cursor (ETag, watermark) only advances when every new patch was registered, so a failed
 * patch is retried at the next (backed-off) poll.
 *
 * Time is checked against replay and poisoning: an index generated before the last accepted one is
 * refused (FEED_REPLAY: a replayed or frozen mirror), an index generated in the future beyond
 * `maxClockSkewMs` is refused (FEED_DATE_INVALID), and a patch published in the future is skipped
 * until its date has come, so it can never push the watermark past patches still to be published.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UnderstudyError, isUnderstudyError, type Logger } from '../core/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import type { Feed, FeedState, PatchServerOptions, PollRecord } from './feeds.ts';
import { safeUrl, type Fetcher } from './fetch.ts';
import { parseEd25519PublicKey, parsePatchIndex, verifyPatchIndex } from './patch-index.ts';

export const defaultMaxPatchBytes = 64 * 1024 * 1024;
export const defaultFeedTimeoutMs = 30_000;
/** How far a server's clock may run ahead of ours. */
export const maxClockSkewMs = 5 * 60_000;
const maxIndexBytes = 64 * 1024 * 1024;

export interface PollContext {
  catalogue: Catalogue;
  fetcher: Fetcher;
  /** Scratch directory for downloads (same filesystem as the patch store is best). */
  workDir: string;
  logger: Logger;
  now: () => Date;
  signal?: AbortSignal;
}

/** A poll result: the record to store plus the names of the patches it registered. */
export interface PollResult extends PollRecord {
  registeredNames: string[];
  failures: { patch?: string; code: string; message: string }[];
}

function fail(error: unknown): PollResult {
  if (!isUnderstudyError(error)) throw error;
  return {
    outcome: 'failed',
    registered: 0,
    registeredNames: [],
    failures: [{ code: error.code, message: error.message }],
    error: { code: error.code, message: error.message },
  };
}

function childUrl(base: string, file: string): string {
  return new URL(file, base.endsWith('/') ? base : `${base}/`).toString();
}

export async function pollPatchServer(feed: Feed, state: FeedState, ctx: PollContext): Promise<PollResult> {
  const options = feed.options as PatchServerOptions;
  const timeoutMs = options.timeoutMs ?? defaultFeedTimeoutMs;
  const maxPatchBytes = options.maxPatchBytes ?? defaultMaxPatchBytes;
  const indexUrl = childUrl(feed.url, options.indexPath ?? 'index.json');
  let index;
  let fetched;
  try {
    const publicKey = parseEd25519PublicKey(options.publicKey);
    fetched = await ctx.fetcher.fetch({
      url: indexUrl,
      etag: state.etag,
      lastModified: state.lastModified,
      maxBytes: maxIndexBytes,
      timeoutMs,
      signal: ctx.signal,
    });
    if (fetched.status === 'not-modified')
      return { outcome: 'not-modified', registered: 0, registeredNames: [], failures: [] };
    let signature: Buffer | null = null;
    try {
      const sig = await ctx.fetcher.fetch({
        url: `${indexUrl}.sig`,
        maxBytes: 4096,
        timeoutMs,
        signal: ctx.signal,
      });
      signature = sig.status === 'ok' ? sig.body : null;
    } catch (error) {
      if (!(
        isUnderstudyError(error, 'FEED_UNREACHABLE') &&
        (error.details.status === 404 || /550/.test(error.message))
      ))
        throw error;
    }
    verifyPatchIndex({ index: fetched.body, signature, publicKey, url: safeUrl(indexUrl) });
    index = parsePatchIndex(fetched.body, safeUrl(indexUrl));
    const generated = Date.parse(index.generated);
    if (state.indexGenerated && generated < Date.parse(state.indexGenerated))
      throw new UnderstudyError(
        'FEED_REPLAY',
        `The index of ${safeUrl(indexUrl)} was generated ${index.generated}, before the last accepted one (${state.indexGenerated}): replayed or from a frozen mirror`,
      );
    if (generated > ctx.now().getTime() + maxClockSkewMs)
      throw new UnderstudyError(
        'FEED_DATE_INVALID',
        `The index of ${safeUrl(indexUrl)} was generated ${index.generated}, in the future`,
      );
  } catch (error) {
    return fail(error);
  }

  const watermark = state.watermark ? Date.parse(state.watermark) : -Infinity;
  const horizon = ctx.now().getTime() + maxClockSkewMs;
  const current = index.patches.filter((p) => Date.parse(p.published) <= horizon);
  for (const p of index.patches.filter((e) => !current.includes(e)))
    ctx.logger.warn(
      { event: 'patch.future', feed: feed.name, patch: p.name, published: p.published },
      'patch published in the future; skipped until then',
    );
  const candidates = current.filter(
    (p) => Date.parse(p.published) > watermark && !ctx.catalogue.hasPatch(p.name),
  );
  const registeredNames: string[] = [];
  const failures: PollResult['failures'] = [];
  await fs.mkdir(ctx.workDir, { recursive: true, mode: 0o700 });
  for (const entry of candidates) {
    const url = new URL(entry.file, indexUrl).toString();
    const temp = path.join(ctx.workDir, `dl-${randomBytes(6).toString('hex')}`);
    try {
      if (entry.size > maxPatchBytes) {
        failures.push({
          patch: entry.name,
          code: 'PATCH_TOO_LARGE',
          message: `Patch "${entry.name}" declares ${entry.size} bytes, more than the limit of ${maxPatchBytes}; not downloaded`,
        });
        continue;
      }
      // The declared size bounds the download too: a server sending more is cut off.
      await ctx.fetcher.download({ url, file: temp, maxBytes: entry.size, timeoutMs, signal: ctx.signal });
      const { created } = await ctx.catalogue.registerPatch({
        file: temp,
        name: entry.name,
        categories: entry.categories,
        format: entry.format,
        sha256: entry.sha256,
        source: { feed: feed.name, url: safeUrl(url) },
        description: entry.description,
        publishedAt: new Date(entry.published).toISOString(),
        firstSeenAt: ctx.now().toISOString(),
      });
      if (created) registeredNames.push(entry.name);
      ctx.logger.info(
        { event: 'patch.registered', feed: feed.name, patch: entry.name, categories: entry.categories },
        'registered patch',
      );
    } catch (error) {
      if (!isUnderstudyError(error)) throw error;
      const message =
        error.code === 'PATCH_TOO_LARGE'
          ? `Patch "${entry.name}" is larger than its declared ${entry.size} bytes; download stopped`
          : error.message;
      failures.push({ patch: entry.name, code: error.code, message });
      ctx.logger.warn(
        { event: 'patch.rejected', feed: feed.name, patch: entry.name, code: error.code, reason: message },
        'patch not registered',
      );
    } finally {
      await fs.rm(temp, { force: true });
    }
  }
  const first = failures[0];
  if (first) {
    return {
      outcome: registeredNames.length > 0 ? 'partial' : 'failed',
      registered: registeredNames.length,
      registeredNames,
      failures,
      error: {
        code: first.code,
        message: failures.length > 1 ? `${first.message} (and ${failures.length - 1} more)` : first.message,
      },
    };
  }
  const newest = current.reduce((max, p) => Math.max(max, Date.parse(p.published)), watermark);
  return {
    outcome: 'ok',
    registered: registeredNames.length,
    registeredNames,
    failures,
    cursor: {
      etag: fetched.etag,
      lastModified: fetched.lastModified,
      watermark: Number.isFinite(newest) ? new Date(newest).toISOString() : state.watermark,
      indexGenerated: new Date(index.generated).toISOString(),
    },
  };
}
