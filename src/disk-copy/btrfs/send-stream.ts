/**
 * A streaming parser of the btrfs send stream (format v1; v2 framing is accepted too), fed chunk by
 * chunk while the same bytes are piped on into `btrfs receive`. Layout (kernel fs/btrfs/send.h):
 *   header  = "btrfs-stream\0" + le32 version
 *   command = le32 len (payload only) + le16 cmd + le32 crc32c, then `len` bytes of attributes
 *   attr    = le16 type + le16 len + value   (v2+: the DATA attribute has no length, it runs to the end)
 * The parser does not check the crc: `btrfs receive` does, and fails the transfer if one is wrong.
 */
import { UnderstudyError } from '../../core/index.ts';

const MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
const STREAM_HEADER_BYTES = MAGIC.length + 4;
const COMMAND_HEADER_BYTES = 10;

/** Command numbers of send stream v1–v3. */
export const sendCommands = {
  1: 'subvol',
  2: 'snapshot',
  3: 'mkfile',
  4: 'mkdir',
  5: 'mknod',
  6: 'mkfifo',
  7: 'mksock',
  8: 'symlink',
  9: 'rename',
  10: 'link',
  11: 'unlink',
  12: 'rmdir',
  13: 'set-xattr',
  14: 'remove-xattr',
  15: 'write',
  16: 'clone',
  17: 'truncate',
  18: 'chmod',
  19: 'chown',
  20: 'utimes',
  21: 'end',
  22: 'update-extent',
  23: 'fallocate',
  24: 'fileattr',
  25: 'encoded-write',
  26: 'enable-verity',
} as const;

export type SendCommandName = (typeof sendCommands)[keyof typeof sendCommands] | 'unknown';

/** Attribute numbers used by the history (the others are kept by number). */
export const sendAttributes = {
  uuid: 1,
  ctransid: 2,
  ino: 3,
  size: 4,
  mode: 5,
  uid: 6,
  gid: 7,
  rdev: 8,
  ctime: 9,
  mtime: 10,
  atime: 11,
  otime: 12,
  xattrName: 13,
  xattrData: 14,
  path: 15,
  pathTo: 16,
  pathLink: 17,
  fileOffset: 18,
  data: 19,
  clonePath: 22,
  cloneOffset: 23,
  cloneLength: 24,
  /** v2: the unencoded length of an encoded write. */
  unencodedFileLength: 27,
} as const;

export interface SendCommand {
  code: number;
  name: SendCommandName;
  /**
   * Attribute values by number. They are views into the stream's buffers: read them during the
   * callback, do not keep them.
   */
  attributes: Map<number, Buffer>;
  /** Size of the command on the wire (header + payload). */
  wireBytes: number;
}

export class SendStreamParser {
  #pending: Buffer = Buffer.alloc(0);
  #version: number | undefined;
  #bytes = 0;
  #commands = 0;
  readonly #onCommand: (command: SendCommand) => void;

  constructor(onCommand: (command: SendCommand) => void) {
    this.#onCommand = onCommand;
  }

  /** Stream version from the header (undefined until the header has passed). */
  get version(): number | undefined {
    return this.#version;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get commands(): number {
    return this.#commands;
  }

  /** Feeds the next chunk; calls onCommand for each command completed by it. Throws on a malformed stream. */
  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    // Only an incomplete command (< 64 KiB in v1) is ever held back, so this concat stays small.
    const buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    let offset = 0;
    for (;;) {
      if (this.#version === undefined) {
        if (buffer.length - offset < STREAM_HEADER_BYTES) break;
        if (!buffer.subarray(offset, offset + MAGIC.length).equals(MAGIC)) {
          throw new UnderstudyError(
            'DISK_COPY_FAILED',
            'The btrfs send stream does not start with "btrfs-stream"',
            {
              hint: 'btrfs send wrote something that is not a send stream; check its stderr.',
            },
          );
        }
        this.#version = buffer.readUInt32LE(offset + MAGIC.length);
        offset += STREAM_HEADER_BYTES;
        continue;
      }
      if (buffer.length - offset < COMMAND_HEADER_BYTES) break;
      const length = buffer.readUInt32LE(offset);
      if (buffer.length - offset < COMMAND_HEADER_BYTES + length) break;
      const code = buffer.readUInt16LE(offset + 4);
      const payload = buffer.subarray(offset + COMMAND_HEADER_BYTES, offset + COMMAND_HEADER_BYTES + length);
      this.#commands += 1;
      this.#onCommand({
        code,
        name: (sendCommands as Record<number, SendCommandName>)[code] ?? 'unknown',
        attributes: this.#parseAttributes(payload),
        wireBytes: COMMAND_HEADER_BYTES + length,
      });
      offset += COMMAND_HEADER_BYTES + length;
    }
    const rest = buffer.subarray(offset);
    // Copy the remainder so that the caller's (large) chunk is not pinned by a small view.
    this.#pending = rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest);
  }

  /** Call at the end of the stream: throws if it stopped in the middle of a command. */
  end(): void {
    if (this.#pending.length > 0 || (this.#bytes > 0 && this.#version === undefined)) {
      throw new UnderstudyError(
        'DISK_COPY_FAILED',
        `The btrfs send stream ended in the middle of a command (${this.#pending.length} bytes left over)`,
      );
    }
  }

  #parseAttributes(payload: Buffer): Map<number, Buffer> {
    const attributes = new Map<number, Buffer>();
    let offset = 0;
    while (offset + 4 <= payload.length) {
      const type = payload.readUInt16LE(offset);
      if (type === sendAttributes.data && (this.#version ?? 1) >= 2) {
        attributes.set(type, payload.subarray(offset + 2));
        break;
      }
      const length = payload.readUInt16LE(offset + 2);
      attributes.set(type, payload.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    return attributes;
  }
}

/** Reads a little-endian u64 attribute as a number (file offsets and lengths fit in 2^53). */
export function readU64(value: Buffer | undefined): number | undefined {
  if (!value || value.length < 8) return undefined;
  return Number(value.readBigUInt64LE(0));
}

export function readString(value: Buffer | undefined): string | undefined {
  return value === undefined ? undefined : value.toString('utf8');
}
