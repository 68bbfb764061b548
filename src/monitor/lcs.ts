/** What the monitor needs from the rest of understudy, injected (the inventory and the patch run own these). */

/** The logical computers the monitor may patch, owned by the inventory (injected, never imported). */
export interface ManagedLcs {
  list(): Promise<string[]>;
  /** Installed Debian packages of an LC: name → version. */
  installedPackages(lc: string): Promise<Map<string, string>>;
}

/** Starts the patch run for these LCs (the patch-run module plugs in here). */
export type StartPatchRun = (request: { lcs: string[]; patches: string[]; reason: string }) => Promise<void>;
