/**
 * The API's operations for the CLI commands that act on the host itself: `host pool-add`,
 * `image import`, `lc import`, `lc exec`, `lc nic add|remove`, `apply`, `disk copy` and `feed add`.
 * Each calls the function the CLI command calls, so the checks and the errors are the same; paths
 * in a request (an image source, an LXC path, a keyring) are paths on the daemon's host, the host
 * it manages.
 */
import { statePaths, type ExecResult } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { parseHostConfig } from '../config/index.ts';
import { addPool, getPool, type Pool } from '../host/index.ts';
import { importImage, type ImageRecord } from '../images/index.ts';
import { getLc } from '../inventory/index.ts';
import type { NicSpec } from '../drivers/index.ts';
import type { CopyProgress, CopyResult } from '../disk-copy/index.ts';
import type { EventLog } from '../events/index.ts';
import { addFeed, parseEd25519PublicKey, type Feed, type FeedKind } from '../monitor/index.ts';
import {
  addLcNic,
  applyHostConfig,
  copyLcDisk,
  importLxcContainer,
  removeLcNic,
  type AddNicOptions,
  type HostContext,
  type ImportedLc,
  type LcDiskCopyOptions,
} from '../app/index.ts';

export interface HostAdminDeps {
  db: Db;
  stateDir: string;
  /** Throws HOST_NOT_INITIALISED without a host. */
  requireHost: () => HostContext;
  /** Where a disk copy's progress goes (`copy.progress`); none: the copy is silent. */
  events?: EventLog;
}

export interface HostAdminOperations {
  addPool(input: { name: string; device?: string; sizeBytes: number }): Promise<Pool>;
  importImage(input: { source: string; name: string; rebuild: boolean }): Promise<ImageRecord>;
  importLxc(input: { container: string; lxcPath: string; name?: string; pool: string }): Promise<ImportedLc>;
  /** Runs argv inside the LC; any exit code is an answer (the caller passes it on). */
  execInLc(name: string, input: { argv: string[]; timeoutMs: number }): Promise<ExecResult>;
  addNic(input: AddNicOptions): Promise<NicSpec>;
  removeNic(lc: string, nic: string): Promise<void>;
  /** Creates what the YAML lists and the host lacks; the host must be initialised (HOST_NOT_INITIALISED). */
  apply(input: { yaml: string; file?: string }): Promise<string[]>;
  copyDisk(input: Omit<LcDiskCopyOptions, 'onProgress' | 'signal'>): Promise<CopyResult>;
  addFeed(input: {
    name: string;
    kind: FeedKind;
    url: string;
    intervalSeconds: number;
    options: Record<string, unknown>;
  }): Feed;
}

export function createHostAdminOperations(deps: HostAdminDeps): HostAdminOperations {
  const { db, stateDir, requireHost } = deps;
  return {
    async addPool(input) {
      requireHost();
      return addPool({ db, stateDir, ...input });
    },
    async importImage(input) {
      requireHost();
      return importImage({ db, ...input, pool: getPool(db, 'main'), progress: () => undefined });
    },
    importLxc: (input) => importLxcContainer(db, requireHost(), input),
    async execInLc(name, input) {
      getLc(db, name);
      return requireHost().driver.exec(name, input.argv, {
        okCodes: Array.from({ length: 256 }, (_, i) => i),
        timeoutMs: input.timeoutMs,
      });
    },
    addNic: (input) => addLcNic(db, requireHost(), input),
    removeNic: (lc, nic) => removeLcNic(db, requireHost(), lc, nic),
    async apply(input) {
      const host = requireHost();
      return applyHostConfig({
        db,
        stateDir,
        cacheDir: statePaths(stateDir).cache,
        config: parseHostConfig(input.yaml, input.file ?? 'the request body'),
        initHost: false,
        host: async () => host,
        progress: () => undefined,
      });
    },
    copyDisk: (input) =>
      copyLcDisk(db, requireHost(), {
        ...input,
        ...(deps.events ? { onProgress: copyProgressRecorder(deps.events, input) } : {}),
      }),
    addFeed(input) {
      if (input.kind === 'patch-server' && typeof input.options.publicKey === 'string')
        parseEd25519PublicKey(input.options.publicKey);
      return addFeed(db, { ...input, options: input.options as never });
    },
  };
}

/** Copy progress arrives many times a second: the log keeps at most one event per interval, and the last of each phase. */
const progressIntervalMs = 250;

/** Writes a disk copy's progress to the event log as `copy.progress`, with what was copied where. */
export function copyProgressRecorder(
  events: Pick<EventLog, 'append'>,
  copy: { from: string; disk: string; to: string; toDisk?: string },
  now: () => number = Date.now,
): (progress: CopyProgress) => void {
  const where = { from: copy.from, disk: copy.disk, to: copy.to, toDisk: copy.toDisk ?? copy.disk };
  let last: CopyProgress | undefined;
  let lastWritten: CopyProgress | undefined;
  let writtenAt = 0;
  const write = (progress: CopyProgress): void => {
    events.append({ type: 'copy.progress', data: { jobId: progress.jobId, ...where, progress } });
    lastWritten = progress;
    writtenAt = now();
  };
  return (progress) => {
    const phaseChanged = last !== undefined && last.phase !== progress.phase;
    // How the previous phase ended is kept, even when it came within the interval.
    if (phaseChanged && last && last !== lastWritten) write(last);
    last = progress;
    if (phaseChanged || progress.phase === 'done' || now() - writtenAt >= progressIntervalMs) write(progress);
  };
}
