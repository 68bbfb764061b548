/**
 * A manager process in the middle of a disk copy: it records a running copy job in the store (as
 * copyDisk does when it starts) and keeps running until it is killed. argv: JSON {dbFile, id, dir}.
 */
import path from 'node:path';
import { diskCopySchema, insertCopyJob } from '../../../src/disk-copy/index.ts';
import { openStore } from '../../../src/store/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as { dbFile: string; id: string; dir: string };
const db = openStore(args.dbFile, [diskCopySchema]);
insertCopyJob(db, {
  id: args.id,
  source: path.join(args.dir, 'source'),
  destination: path.join(args.dir, 'destination'),
  mode: 'send-receive',
  sourceStage: path.join(args.dir, 'source-stage'),
  destinationStage: path.join(args.dir, 'destination-stage'),
});
process.stdout.write('copying\n');
setInterval(() => undefined, 1000);
