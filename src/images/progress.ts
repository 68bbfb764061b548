/**
 * How an image build reports its progress: a line for a person and the phase it belongs to, so that
 * a client (the API's event stream) can follow the build without parsing the text.
 *
 * Phases:
 * - `debootstrap`: debootstrap runs (its own "I: …" steps come as lines of this phase);
 * - `debootstrap-cached`: the debootstrapped tree came from the cache (nothing fetched);
 * - `debootstrap-cache-store`: the new tree is stored in the cache for later builds;
 * - `unpack`: the tree is unpacked into the image;
 * - `install`: understudy's files (busybox init, Node.js, the demo service) go in;
 * - `copy`, `shift-ids`: an imported tree is copied, its owners shifted for a container's idmap;
 * - `seal`: the image becomes a read-only snapshot.
 */
export type ImageBuildPhase =
  | 'debootstrap'
  | 'debootstrap-cached'
  | 'debootstrap-cache-store'
  | 'unpack'
  | 'install'
  | 'copy'
  | 'shift-ids'
  | 'seal';

export type ImageProgress = (line: string, phase?: ImageBuildPhase) => void;

/** Passes debootstrap's own progress ("I: Retrieving Release", "I: Extracting bash...") on as lines. */
export function debootstrapLine(line: string, progress: ImageProgress): void {
  if (line.startsWith('I: ')) progress(line.slice(3), 'debootstrap');
}
