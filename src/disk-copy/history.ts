/**
 * The write history (seed Fig. 8–10): what the running LC wrote while its disk was being copied.
 * The incremental sends *are* that history; the recorder turns the changes they carry into records
 * (time, op, path, offset, length — not the data bytes) and keeps a summary. Contiguous writes to the
 * same file in the same pass are merged into one record, so an append of 100 MiB is one write, not
 * two thousand 48 KiB stream commands.
 */

/**
 * What a record says happened to the tree:
 * - `write`: bytes written at offset (length bytes); `clone`: a range shared from another file;
 * - `truncate`: the file's size set to `length`;
 * - `create`, `mkdir`, `symlink`, `mknod`, `link`: a new name; `rename`: path → pathTo;
 * - `unlink`, `rmdir`: a name removed; `set-xattr`, `remove-xattr`, `chmod`, `chown`: metadata.
 * New files appear first under a temporary name (e.g. `o257-7-0`) and are renamed into place: that is
 * how btrfs send encodes them, and the history keeps it.
 */
export type HistoryOp =
  | 'write'
  | 'clone'
  | 'truncate'
  | 'create'
  | 'mkdir'
  | 'symlink'
  | 'mknod'
  | 'link'
  | 'rename'
  | 'unlink'
  | 'rmdir'
  | 'set-xattr'
  | 'remove-xattr'
  | 'chmod'
  | 'chown';

export interface HistoryRecord {
  /** Catch-up pass (1 = first incremental after the full copy) that carried the record. */
  pass: number;
  /** When the record passed through the copy (ISO, ms). The stream carries no per-write time. */
  at: string;
  op: HistoryOp;
  /** Path relative to the disk's root. */
  path: string;
  pathTo?: string;
  offset?: number;
  length?: number;
}

export interface HistorySummary {
  /** Write records (merged contiguous writes), clones and truncates. */
  writes: number;
  /** Distinct paths written, created or truncated. */
  files: number;
  /** Bytes written (sum of write and clone lengths). */
  bytes: number;
  creates: number;
  renames: number;
  deletes: number;
  /** Catch-up passes that replayed the history onto the copy (including the final pass after the cut). */
  passes: number;
  /** Records beyond `maxRecords` were counted in the summary but not kept. */
  truncated: boolean;
}

/**
 * One change an incremental send carried, as the store reads it from its send (on btrfs, one command
 * of the send stream; see btrfs/send-history.ts).
 */
export interface HistoryChange {
  op: HistoryOp;
  /** Path relative to the disk's root. */
  path: string;
  /** The new name (rename), the link's target (link, symlink). */
  pathTo?: string;
  offset?: number;
  length?: number;
}

export class HistoryRecorder {
  readonly records: HistoryRecord[] = [];
  readonly #files = new Set<string>();
  readonly #maxRecords: number;
  #writes = 0;
  #bytes = 0;
  #creates = 0;
  #renames = 0;
  #deletes = 0;
  #passes = new Set<number>();
  #truncated = false;
  #last: HistoryRecord | undefined;
  readonly #clock: () => Date;

  constructor(options: { maxRecords?: number; clock?: () => Date } = {}) {
    this.#maxRecords = options.maxRecords ?? 1_000_000;
    this.#clock = options.clock ?? ((): Date => new Date());
  }

  /** Takes one change carried by catch-up pass `pass`; contiguous writes to one file are merged. */
  take(pass: number, change: HistoryChange): void {
    const { op, path, offset, length } = change;
    this.#passes.add(pass);
    if (op === 'write' && this.#extendLast(pass, path, offset ?? 0, length ?? 0)) {
      this.#bytes += length ?? 0;
      return;
    }
    const record: HistoryRecord = { pass, at: this.#clock().toISOString(), op, path };
    if (change.pathTo !== undefined && (op === 'rename' || op === 'link' || op === 'symlink'))
      record.pathTo = change.pathTo;
    if (offset !== undefined) record.offset = offset;
    if (length !== undefined) record.length = length;
    this.#count(record);
  }

  summary(): HistorySummary {
    return {
      writes: this.#writes,
      files: this.#files.size,
      bytes: this.#bytes,
      creates: this.#creates,
      renames: this.#renames,
      deletes: this.#deletes,
      passes: this.#passes.size,
      truncated: this.#truncated,
    };
  }

  /** Records added since `from` (for storing them pass by pass). */
  recordsSince(from: number): HistoryRecord[] {
    return this.records.slice(from);
  }

  #extendLast(pass: number, path: string, offset: number, length: number): boolean {
    const last = this.#last;
    if (!last || last.op !== 'write' || last.pass !== pass || last.path !== path) return false;
    if ((last.offset ?? 0) + (last.length ?? 0) !== offset) return false;
    last.length = (last.length ?? 0) + length;
    return true;
  }

  #count(record: HistoryRecord): void {
    switch (record.op) {
      case 'write':
      case 'clone':
        this.#writes += 1;
        this.#bytes += record.length ?? 0;
        this.#files.add(record.path);
        break;
      case 'truncate':
        this.#writes += 1;
        this.#files.add(record.path);
        break;
      case 'create':
      case 'mkdir':
      case 'symlink':
      case 'mknod':
      case 'link':
        this.#creates += 1;
        break;
      case 'rename':
        this.#renames += 1;
        break;
      case 'unlink':
      case 'rmdir':
        this.#deletes += 1;
        break;
      default:
        break;
    }
    if (this.records.length < this.#maxRecords) {
      this.records.push(record);
      this.#last = record;
    } else {
      this.#truncated = true;
      this.#last = undefined;
    }
  }
}

/** "1,204 writes to 37 files, 18.2 MiB, replayed in 2 passes" */
export function describeHistory(summary: HistorySummary): string {
  const n = (value: number): string => value.toLocaleString('en-US');
  const parts = [
    `${n(summary.writes)} write${summary.writes === 1 ? '' : 's'} to ${n(summary.files)} file${summary.files === 1 ? '' : 's'}`,
    formatBytes(summary.bytes),
  ];
  const meta: string[] = [];
  if (summary.creates) meta.push(`${n(summary.creates)} created`);
  if (summary.renames) meta.push(`${n(summary.renames)} renamed`);
  if (summary.deletes) meta.push(`${n(summary.deletes)} deleted`);
  if (meta.length) parts.push(meta.join(', '));
  parts.push(`replayed in ${summary.passes} pass${summary.passes === 1 ? '' : 'es'}`);
  return parts.join(', ');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
