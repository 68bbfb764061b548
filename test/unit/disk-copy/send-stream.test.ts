import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HistoryRecorder,
  SendStreamParser,
  describeHistory,
  historyChangeOf,
  sendAttributes as A,
  type SendCommand,
} from '../../../src/disk-copy/index.ts';

const C = {
  subvol: 1,
  mkfile: 3,
  mkdir: 4,
  rename: 9,
  unlink: 11,
  write: 15,
  clone: 16,
  truncate: 17,
  chmod: 18,
  utimes: 20,
  end: 21,
};

function tlv(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16LE(type, 0);
  header.writeUInt16LE(value.length, 2);
  return Buffer.concat([header, value]);
}
const str = (type: number, s: string): Buffer => tlv(type, Buffer.from(s));
const u64 = (type: number, n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return tlv(type, b);
};

function command(cmd: number, ...attrs: Buffer[]): Buffer {
  const payload = Buffer.concat(attrs);
  const header = Buffer.alloc(10);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt16LE(cmd, 4);
  header.writeUInt32LE(0, 6);
  return Buffer.concat([header, payload]);
}

function stream(version: number, ...commands: Buffer[]): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(version, 0);
  return Buffer.concat([Buffer.from('btrfs-stream\0', 'latin1'), v, ...commands]);
}

const sample = stream(
  1,
  command(C.subvol, str(A.path, 'pass-1'), tlv(A.uuid, Buffer.alloc(16)), u64(A.ctransid, 7)),
  command(C.mkfile, str(A.path, 'o257-7-0'), u64(A.ino, 257)),
  command(C.rename, str(A.path, 'o257-7-0'), str(A.pathTo, 'var/new.txt')),
  command(C.write, str(A.path, 'var/log'), u64(A.fileOffset, 0), tlv(A.data, Buffer.alloc(49152, 1))),
  command(C.write, str(A.path, 'var/log'), u64(A.fileOffset, 49152), tlv(A.data, Buffer.alloc(1000, 2))),
  command(C.write, str(A.path, 'var/db'), u64(A.fileOffset, 8192), tlv(A.data, Buffer.alloc(4096, 3))),
  command(C.write, str(A.path, 'var/db'), u64(A.fileOffset, 0), tlv(A.data, Buffer.alloc(4096, 4))),
  command(
    C.clone,
    str(A.path, 'var/copy'),
    u64(A.fileOffset, 0),
    u64(A.cloneLength, 65536),
    str(A.clonePath, 'var/db'),
    u64(A.cloneOffset, 0),
  ),
  command(C.truncate, str(A.path, 'var/db'), u64(A.size, 12288)),
  command(C.chmod, str(A.path, 'var/db'), u64(A.mode, 0o600)),
  command(C.utimes, str(A.path, 'var/db')),
  command(C.unlink, str(A.path, 'var/old')),
  command(C.end),
);

function parseInChunks(
  data: Buffer,
  chunkSize: number,
): { commands: SendCommand['name'][]; recorder: HistoryRecorder; parser: SendStreamParser } {
  const recorder = new HistoryRecorder({ clock: () => new Date('2026-01-01T00:00:00Z') });
  const commands: SendCommand['name'][] = [];
  const parser = new SendStreamParser((c) => {
    commands.push(c.name);
    const change = historyChangeOf(c);
    if (change) recorder.take(1, change);
  });
  for (let i = 0; i < data.length; i += chunkSize) parser.push(data.subarray(i, i + chunkSize));
  parser.end();
  return { commands, recorder, parser };
}

void describe('send stream parser and write history', () => {
  void it('decodes every command whatever the chunking, and turns them into history records', () => {
    for (const chunkSize of [1, 7, 4096, 65536, sample.length]) {
      const { commands, recorder, parser } = parseInChunks(sample, chunkSize);
      assert.equal(parser.version, 1);
      assert.equal(parser.bytes, sample.length);
      assert.deepEqual(commands, [
        'subvol',
        'mkfile',
        'rename',
        'write',
        'write',
        'write',
        'write',
        'clone',
        'truncate',
        'chmod',
        'utimes',
        'unlink',
        'end',
      ]);
      assert.deepEqual(recorder.records, [
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'create', path: 'o257-7-0' },
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'rename', path: 'o257-7-0', pathTo: 'var/new.txt' },
        // two contiguous writes merge into one record
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'write', path: 'var/log', offset: 0, length: 50152 },
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'write', path: 'var/db', offset: 8192, length: 4096 },
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'write', path: 'var/db', offset: 0, length: 4096 },
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'clone', path: 'var/copy', offset: 0, length: 65536 },
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'truncate', path: 'var/db', length: 12288 },
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'chmod', path: 'var/db' },
        { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'unlink', path: 'var/old' },
      ]);
      const summary = recorder.summary();
      assert.deepEqual(summary, {
        writes: 5,
        files: 3,
        bytes: 50152 + 4096 + 4096 + 65536,
        creates: 1,
        renames: 1,
        deletes: 1,
        passes: 1,
        truncated: false,
      });
      assert.equal(
        describeHistory(summary),
        '5 writes to 3 files, 121.0 KiB, 1 created, 1 renamed, 1 deleted, replayed in 1 pass',
      );
    }
  });

  void it('reads a v2 DATA attribute that runs to the end of the command', () => {
    const header = Buffer.alloc(4);
    header.writeUInt16LE(A.data, 0);
    const v2write = command(
      C.write,
      str(A.path, 'f'),
      u64(A.fileOffset, 100),
      Buffer.concat([header.subarray(0, 2), Buffer.alloc(70000)]),
    );
    const { recorder } = parseInChunks(stream(2, v2write), 1000);
    assert.deepEqual(
      recorder.records.map((r) => [r.op, r.offset, r.length]),
      [['write', 100, 70000]],
    );
  });

  void it('rejects a stream that is not a send stream, or stops in the middle of a command', () => {
    const parser = new SendStreamParser(() => undefined);
    assert.throws(() => parser.push(Buffer.from('not-a-btrfs-stream-at-all')), { code: 'DISK_COPY_FAILED' });
    const truncated = new SendStreamParser(() => undefined);
    truncated.push(sample.subarray(0, sample.length - 3));
    assert.throws(() => truncated.end(), { code: 'DISK_COPY_FAILED' });
  });

  void it('counts records beyond maxRecords in the summary but does not keep them', () => {
    const recorder = new HistoryRecorder({ maxRecords: 2 });
    const parser = new SendStreamParser((c) => {
      const change = historyChangeOf(c);
      if (change) recorder.take(1, change);
    });
    parser.push(sample);
    assert.equal(recorder.records.length, 2);
    assert.equal(recorder.summary().truncated, true);
    assert.equal(recorder.summary().deletes, 1);
  });
});
