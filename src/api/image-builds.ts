/**
 * Image builds started through the API (`POST /v1/images`), run in the background of the daemon
 * with their progress on the event log: one `image.build` event per phase or line of progress
 * (debootstrap's own steps, a cached debootstrap tree, unpacking, sealing), then `built` or `failed`.
 */
import crypto from 'node:crypto';
import { isUnderstudyError, statePaths, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { EventLog } from '../events/index.ts';
import { getPool, requireHost } from '../host/index.ts';
import { buildImage, type ImageBuildPhase } from '../images/index.ts';

export interface ImageBuildRequest {
  recipe: string;
  name?: string;
  rebuild?: boolean;
  suite?: string;
  packages?: string[];
}

export interface StartedImageBuild {
  id: string;
  recipe: string;
  /** The image's name when the request named it (a debian system's name is derived from its inputs). */
  image: string | null;
  /** The build's events are the `image.build` events after this id with its `buildId`. */
  eventsAfter: number;
}

export interface ImageBuilds {
  /**
   * Starts a build; resolves once it reported its first progress, or rejects with the error of a
   * build that could not start (IMAGE_UNKNOWN, INVALID_ARGUMENT, HOST_NOT_INITIALISED) — the errors
   * of `understudy image build`.
   */
  start(request: ImageBuildRequest): Promise<StartedImageBuild>;
  /** Resolves when every build has ended. */
  settled(): Promise<void>;
  /** Aborts the running builds (they clean up what they made) and waits for them. */
  stop(): Promise<void>;
}

/** Lines of the same phase reach the log at most this often (debootstrap prints hundreds). */
const lineIntervalMs = 250;

export function createImageBuilds(deps: {
  db: Db;
  stateDir: string;
  events: EventLog;
  logger: Logger;
}): ImageBuilds {
  const running = new Set<Promise<unknown>>();
  const abort = new AbortController();

  return {
    async start(request) {
      await requireHost(deps.db);
      const id = `b${new Date().toISOString().slice(2, 10).replaceAll('-', '')}-${crypto.randomBytes(3).toString('hex')}`;
      const started = performance.now();
      const eventsAfter = deps.events.lastId();
      const base = { buildId: id, recipe: request.recipe, image: request.name ?? null };
      let lastPhase: string | undefined;
      let lastAt = 0;
      let firstProgress: () => void = () => undefined;
      const progressed = new Promise<void>((resolve) => (firstProgress = resolve));
      const progress = (message: string, phase?: ImageBuildPhase): void => {
        const now = performance.now();
        if (phase === lastPhase && now - lastAt < lineIntervalMs) return;
        lastPhase = phase;
        lastAt = now;
        deps.events.append({
          type: 'image.build',
          data: {
            ...base,
            phase: phase ?? 'progress',
            message,
            elapsedMs: Math.round(now - started),
            ...(phase === 'debootstrap-cached' ? { cached: true } : {}),
          },
        });
        firstProgress();
      };
      const work = buildImage({
        db: deps.db,
        recipe: request.recipe,
        name: request.name,
        rebuild: request.rebuild,
        suite: request.suite,
        packages: request.packages,
        pool: getPool(deps.db, 'main'),
        cacheDir: statePaths(deps.stateDir).cache,
        progress,
        signal: abort.signal,
      });
      const ended = work.then(
        (image) => {
          deps.events.append({
            type: 'image.build',
            data: {
              ...base,
              image: image.name,
              phase: 'built',
              sizeBytes: image.sizeBytes,
              elapsedMs: Math.round(performance.now() - started),
            },
          });
          return { ok: true as const };
        },
        (error: unknown) => {
          deps.events.append({
            type: 'image.build',
            data: {
              ...base,
              phase: 'failed',
              error: error instanceof Error ? error.message.split('\n')[0] : String(error),
              ...(isUnderstudyError(error) ? { code: error.code } : {}),
              elapsedMs: Math.round(performance.now() - started),
            },
          });
          deps.logger.warn({ err: error, buildId: id }, 'image build failed');
          return { ok: false as const, error };
        },
      );
      running.add(ended);
      void ended.finally(() => running.delete(ended));
      const first = await Promise.race([progressed.then(() => null), ended]);
      // A build that failed before it reported anything answers with its error.
      if (first && !first.ok) throw first.error;
      return { id, recipe: request.recipe, image: request.name ?? null, eventsAfter };
    },
    async settled() {
      await Promise.all([...running]);
    },
    async stop() {
      abort.abort();
      await Promise.all([...running]);
    },
  };
}
