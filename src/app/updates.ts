/**
 * The Debian updates pending for an LC, as `understudy updates` and `GET|POST /v1/lcs/{name}/updates`
 * compute them: its own dpkg status, read from its system disk inside its root by the driver,
 * against the verified indexes of the apt feeds; with `apply`, exactly those .deb files are
 * registered and marked for the LC's next patch run.
 */
import path from 'node:path';
import { UnderstudyError, isErrno } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { Catalogue } from '../catalogue/index.ts';
import type { HostContext } from '../host/index.ts';
import { getLc } from '../inventory/index.ts';
import {
  dpkgStatusPath,
  pendingUpdates,
  realFetcher,
  type Fetcher,
  type PendingUpdates,
} from '../monitor/index.ts';

export interface LcUpdatesOptions {
  db: Db;
  catalogue: Catalogue;
  host: HostContext;
  stateDir: string;
  lc: string;
  /** The apt feeds to use (default: every apt feed). */
  feeds?: readonly string[];
  apply: boolean;
  fetcher?: Fetcher;
  signal?: AbortSignal;
}

/**
 * Throws LC_NOT_FOUND, DPKG_STATUS_INVALID (no dpkg status: not a Debian system), FEED_NOT_FOUND,
 * the feeds' own errors, UPDATE_PACKAGE_NOT_IN_FEED or UPDATE_DEPENDENCY_UNSATISFIABLE; with
 * `apply`, nothing is registered unless the whole plan is.
 */
export async function lcPendingUpdates(o: LcUpdatesOptions): Promise<PendingUpdates> {
  const lc = getLc(o.db, o.lc);
  let dpkgStatus: Buffer;
  try {
    dpkgStatus = await o.host.driver.readFile(lc, dpkgStatusPath);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    throw new UnderstudyError(
      'DPKG_STATUS_INVALID',
      `${o.lc} has no ${dpkgStatusPath}: not a Debian system`,
      {
        cause: error,
      },
    );
  }
  return pendingUpdates({
    db: o.db,
    catalogue: o.catalogue,
    fetcher: o.fetcher ?? realFetcher,
    workDir: path.join(o.stateDir, 'cache', 'monitor'),
    lc: o.lc,
    dpkgStatus,
    feeds: o.feeds ?? [],
    apply: o.apply,
    signal: o.signal,
  });
}
