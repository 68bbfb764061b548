/** A manager process that runs the whole-tree check of lc1/app against lc2/app, slowly, and is killed by the test meanwhile. */
import { BtrfsDiskStore, diskCopySchema } from '../../../src/disk-copy/index.ts';
import type { LcSpec } from '../../../src/drivers/index.ts';
import { openStore } from '../../../src/store/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  db: string;
  pools: Record<string, string>;
  from: LcSpec;
  to: LcSpec;
  bytesPerSecond: number;
};
const db = openStore(args.db, [diskCopySchema]);
const store = new BtrfsDiskStore({
  db,
  poolPath: (pool) => args.pools[pool] ?? '/nonexistent',
  poolDevice: () => '/dev/null',
});
await store.verifyFinalSync(
  { lc: args.from, disk: 'app' },
  { lc: args.to, disk: 'app' },
  { bytesPerSecond: args.bytesPerSecond },
);
