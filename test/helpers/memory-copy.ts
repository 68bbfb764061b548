/**
 * The copy primitives in memory: a disk is a map of file contents, a snapshot is a copy of the map kept
 * under `<disk>@<job>/<name>` (and, once received, under the destination's key the same way), a send
 * carries the files that differ from the parent snapshot, and a clone copies the received map into
 * the destination's place (in snapshot mode, the cut's map, compared with its clone by `diffClone`).
 * The live copy (src/disk-copy/live-copy.ts) runs over it unchanged.
 */
import { createHash } from 'node:crypto';
import { UnderstudyError } from '../../src/core/index.ts';
import type { CopyMode, CopySession, TreeHash } from '../../src/disk-copy/index.ts';

export type Files = Map<string, Buffer>;

export interface MemoryCopyHooks {
  /** Runs while a send is in flight: a writer that keeps writing to the source meanwhile. */
  whileSending?: (send: { snapshot: string; parent?: string }) => void | Promise<void>;
  /** Fails the primitive named `<op>:<snapshot>` (e.g. `send:pass-2`, `snapshot:cut`, `clone:cut`). */
  failAt?: string;
  /** Runs after the destination was cloned: a fault that makes it differ from the cut. */
  afterClone?: (destination: Files) => void;
}

export interface MemoryCopyOptions {
  volumes: Map<string, Files>;
  /** Keys of the two disks in `volumes`. */
  from: string;
  to: string;
  jobId: string;
  mode?: 'auto' | CopyMode;
  hooks?: MemoryCopyHooks;
  /** Called once the copy succeeded (the store records the pair's sync base). */
  onFinished?: () => void;
}

const copyOf = (files: Files): Files => new Map([...files].map(([p, b]) => [p, Buffer.from(b)]));

/** The snapshot keys of job `jobId` on disk `disk`. */
export const snapshotKey = (disk: string, jobId: string, name: string): string => `${disk}@${jobId}/${name}`;

function hashFiles(files: Files): TreeHash {
  const lines = new Map<string, string>();
  for (const path of [...files.keys()].sort())
    lines.set(
      path,
      createHash('sha256')
        .update(path)
        .update(files.get(path) ?? Buffer.alloc(0))
        .digest('hex'),
    );
  const digest = createHash('sha256');
  for (const line of lines.values()) digest.update(line);
  const bytes = [...files.values()].reduce((s, b) => s + b.length, 0);
  return { digest: digest.digest('hex'), entries: files.size, bytes, lines, durationMs: 0 };
}

/** Removes what a copy job left: its snapshots on both sides and its destination (see CopyPrimitives.removeCopy). */
export function removeMemoryCopy(
  volumes: Map<string, Files>,
  names: { destination: string; sourceStage: string | null; destinationStage: string | null },
): void {
  for (const key of [...volumes.keys()])
    if (
      (names.sourceStage && key.startsWith(`${names.sourceStage}/`)) ||
      (names.destinationStage && key.startsWith(`${names.destinationStage}/`))
    )
      volumes.delete(key);
  volumes.delete(names.destination);
}

export function openMemoryCopy(o: MemoryCopyOptions): CopySession {
  const { volumes, from, to, jobId } = o;
  if (!volumes.has(from))
    throw new UnderstudyError('DISK_COPY_SOURCE_INVALID', `The source ${from} does not exist`);
  if (volumes.has(to))
    throw new UnderstudyError('DISK_COPY_DESTINATION_INVALID', `The destination ${to} already exists`);
  const mode: CopyMode = o.mode === 'snapshot' ? 'snapshot' : 'send-receive';
  const ofSource = (name: string): string => snapshotKey(from, jobId, name);
  const received = (name: string): string => snapshotKey(to, jobId, name);
  const fault = (op: string, name: string): void => {
    if (o.hooks?.failAt === `${op}:${name}`) throw new Error(`injected failure of ${op} ${name}`);
  };
  const get = (key: string): Files => {
    const files = volumes.get(key);
    if (!files) throw new Error(`no volume ${key}`);
    return files;
  };
  const removeSnapshots = (): void => {
    for (const key of [...volumes.keys()])
      if (key.startsWith(`${snapshotKey(from, jobId, '')}`) || key.startsWith(snapshotKey(to, jobId, '')))
        volumes.delete(key);
  };
  return {
    mode,
    names: {
      source: from,
      destination: to,
      sourceStage: `${from}@${jobId}`,
      destinationStage: mode === 'send-receive' ? `${to}@${jobId}` : null,
    },
    async prepare() {},
    async snapshot(name) {
      fault('snapshot', name);
      volumes.set(ofSource(name), copyOf(get(from)));
    },
    async size(name) {
      return [...get(ofSource(name)).values()].reduce((s, b) => s + b.length, 0);
    },
    async checkSpace() {},
    async send(s) {
      const started = performance.now();
      const snapshot = get(ofSource(s.snapshot));
      const parent = s.parent === undefined ? new Map<string, Buffer>() : get(ofSource(s.parent));
      if (s.parent !== undefined) get(received(s.parent));
      await o.hooks?.whileSending?.({ snapshot: s.snapshot, ...(s.parent ? { parent: s.parent } : {}) });
      fault('send', s.snapshot);
      if (s.signal?.aborted)
        throw new UnderstudyError('DISK_COPY_CANCELLED', `Copy of ${s.snapshot} cancelled`);
      let bytes = 0;
      for (const [path, data] of snapshot) {
        if (parent.get(path)?.equals(data)) continue;
        bytes += data.length;
        s.onChange?.({ op: 'write', path, offset: 0, length: data.length });
      }
      for (const path of parent.keys()) {
        if (snapshot.has(path)) continue;
        bytes += path.length;
        s.onChange?.({ op: 'unlink', path });
      }
      s.onBytes?.(bytes);
      volumes.set(received(s.snapshot), copyOf(snapshot));
      return { bytes, durationMs: performance.now() - started };
    },
    async deleteSnapshot(name) {
      volumes.delete(ofSource(name));
      volumes.delete(received(name));
    },
    async flush() {},
    async clone(name) {
      fault('clone', name);
      volumes.set(to, copyOf(get(mode === 'snapshot' ? ofSource(name) : received(name))));
      o.hooks?.afterClone?.(get(to));
    },
    async hash(what) {
      return hashFiles(get(what === 'destination' ? to : ofSource(what.snapshot)));
    },
    // Like btrfs, a store that compares a clone with its snapshot without hashing both trees.
    ...(mode === 'snapshot'
      ? {
          async diffClone(name: string, limit: number) {
            const cut = get(ofSource(name));
            const copy = get(to);
            const paths = new Set([...cut.keys(), ...copy.keys()]);
            return [...paths]
              .filter((p) => !(cut.get(p) && copy.get(p)?.equals(cut.get(p) ?? Buffer.alloc(0))))
              .sort()
              .slice(0, limit);
          },
        }
      : {}),
    async finish() {
      removeSnapshots();
      o.onFinished?.();
      return undefined;
    },
    async discard({ destinationCreated }) {
      if (destinationCreated) volumes.delete(to);
      removeSnapshots();
      return [];
    },
    async explainFailure(error) {
      return error;
    },
  };
}
