/**
 * A manager process that copies a disk and is killed mid-copy by the crash-recovery test.
 * argv: JSON {source, poolPath, name, dbFile, ownTree?, stallAt?}. Prints one JSON progress event per
 * line; at the first event of phase `stallAt` it stops (its thread blocked) until it is killed.
 */
import { copyDisk, diskCopySchema } from '../../../src/disk-copy/index.ts';
import { openStore } from '../../../src/store/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  source: string;
  poolPath: string;
  name: string;
  dbFile: string;
  ownTree?: boolean;
  stallAt?: string;
};
const db = openStore(args.dbFile, [diskCopySchema]);
await copyDisk({
  source: args.source,
  destination: { poolPath: args.poolPath, name: args.name },
  freezer: { async freeze() {}, async thaw() {} },
  db,
  ...(args.ownTree ? { ownTree: true } : {}),
  onProgress: (e) => {
    process.stdout.write(`${JSON.stringify(e)}\n`);
    if (e.phase === args.stallAt) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
  },
});
