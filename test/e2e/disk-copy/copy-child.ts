/**
 * A manager process that copies a disk and is killed mid-copy by the crash-recovery test.
 * argv: JSON {source, poolPath, name, dbFile}. Prints one JSON progress event per line.
 */
import { copyDisk, diskCopySchema } from '../../../src/disk-copy/index.ts';
import { openStore } from '../../../src/store/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  source: string;
  poolPath: string;
  name: string;
  dbFile: string;
};
const db = openStore(args.dbFile, [diskCopySchema]);
await copyDisk({
  source: args.source,
  destination: { poolPath: args.poolPath, name: args.name },
  freezer: { async freeze() {}, async thaw() {} },
  db,
  onProgress: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
});
