import path from 'node:path';

/** Where the catalogue keeps patch files for a state directory. */
export function patchesDirOf(stateDir: string): string {
  return path.join(stateDir, 'patches');
}
