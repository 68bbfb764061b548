/** A manager process that runs one sync (lc1/app → lc2/app) and is killed by the test meanwhile. */
import { BtrfsDiskStore, diskCopySchema } from '../../../src/disk-copy/index.ts';
import type { LcSpec } from '../../../src/drivers/index.ts';
import { openStore } from '../../../src/store/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  db: string;
  pools: Record<string, string>;
  from: LcSpec;
  to: LcSpec;
};
const db = openStore(args.db, [diskCopySchema]);
const store = new BtrfsDiskStore({
  db,
  poolPath: (pool) => args.pools[pool] ?? '/nonexistent',
  poolDevice: () => '/dev/null',
});
await store.sync({ lc: args.from, disk: 'app' }, { lc: args.to, disk: 'app' });
