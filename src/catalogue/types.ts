/** The vocabulary of the patch table. */

/** security: fixes a vulnerability; feature: adds function; bugfix: fixes a defect. A patch may carry several. */
export type PatchCategory = 'security' | 'feature' | 'bugfix';
export const patchCategories: readonly PatchCategory[] = ['security', 'feature', 'bugfix'];

/**
 * How a patch is applied by the patch run: diff = a unified diff for `patch -p1` at the LC's root;
 * archive = a tar archive unpacked at the root; script = an executable run inside the LC;
 * deb = a Debian package installed with dpkg.
 */
export type PatchFormat = 'diff' | 'archive' | 'script' | 'deb';
export const patchFormats: readonly PatchFormat[] = ['diff', 'archive', 'script', 'deb'];

/** Result of the last attempt to apply a patch to an LC: ok = applied; failed = the apply step failed; skipped = not attempted (e.g. not applicable). */
export type PatchResultState = 'ok' | 'failed' | 'skipped';

export interface Patch {
  name: string;
  categories: PatchCategory[];
  format: PatchFormat;
  sha256: string;
  size: number;
  sourceFeed: string | null;
  sourceUrl: string | null;
  description: string;
  /** deb patches: the package and the version this patch installs. */
  package: string | null;
  version: string | null;
  publishedAt: string | null;
  firstSeenAt: string;
  registeredAt: string;
  /** The stored file, `<stateDir>/patches/<sha256>`. */
  filePath: string;
}

export interface PatchLcState {
  patch: string;
  lc: string;
  appliedAt: string | null;
  applyNextRun: boolean;
  lastResult: PatchResultState | null;
  lastExitCode: number | null;
  lastOutputTail: string | null;
  updatedAt: string;
}

export interface PatchResult {
  state: PatchResultState;
  exitCode?: number | null;
  /** The tail of the apply output; cut to the last 4 KiB. */
  output?: string;
}
