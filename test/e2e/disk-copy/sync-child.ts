/** A manager process that runs one sync (lc1/app → lc2/app) and is killed by the test meanwhile, or kills itself. */
import { BtrfsDiskStore, diskCopySchema } from '../../../src/disk-copy/index.ts';
import type { LcSpec } from '../../../src/drivers/index.ts';
import { openStore } from '../../../src/store/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  db: string;
  pools: Record<string, string>;
  from: LcSpec;
  to: LcSpec;
  /** A final sync, prepared ahead (the cut in place). */
  final?: boolean;
  /** Dies (SIGKILL) right after the final sync returns, before its cut is completed. */
  killAfterSync?: boolean;
  /** Dies (SIGKILL) once the final sync is prepared. */
  killAfterPrepare?: boolean;
};
const db = openStore(args.db, [diskCopySchema]);
const store = new BtrfsDiskStore({
  db,
  poolPath: (pool) => args.pools[pool] ?? '/nonexistent',
  poolDevice: () => '/dev/null',
});
const [from, to] = [
  { lc: args.from, disk: 'app' },
  { lc: args.to, disk: 'app' },
];
if (args.final) {
  await store.prepareFinalSync(from, to);
  if (args.killAfterPrepare) process.kill(process.pid, 'SIGKILL');
  await store.sync(from, to, { final: true });
  if (args.killAfterSync) process.kill(process.pid, 'SIGKILL');
} else await store.sync(from, to);
