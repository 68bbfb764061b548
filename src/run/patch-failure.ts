/**
 * What a failed patch's output says went wrong, in a line or a few: the lines of dpkg and apt that name
 * the cause (a file another package owns, a maintainer script's exit status, a dependency nothing
 * satisfies) rather than the generic end of the log ("Errors were encountered while processing", "E:
 * Sub-process /usr/bin/dpkg returned an error code (1)"), which names none.
 */

/** Lines of apt/dpkg output that name the cause of a failed transaction. */
const causeLines = [
  /^dpkg: error processing /,
  /^dpkg: dependency problems /,
  /^\s*trying to overwrite /,
  /^\s*new \S+ package pre-dependency problem/,
  /(pre|post)-(installation|removal) script subprocess returned error exit status/,
  /^\s*\S+ : (Pre-)?Depends: /,
  /^\s+(Pre-)?Depends: /,
  /^\s*\S+ (depends|pre-depends) on /,
  /is not installable|but it is not going to be installed|but \S+ is to be installed/,
  /No space left on device/,
];

/** Generic closing lines that name no cause; left out when a cause line was found. */
const genericLines = [
  /^Errors were encountered while processing:/,
  /^E: Sub-process .* returned an error code/,
  /^E: Unable to correct problems, you have held broken packages/,
];

/**
 * The cause of a failed patch, from its output: the lines naming it (at most `max`, in order, each once),
 * else the last three lines. Joined with " / " for a one-line message.
 */
export function summarizePatchFailure(output: string, max = 6): string {
  const lines = output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '');
  const causes: string[] = [];
  for (const line of lines) {
    if (!causeLines.some((re) => re.test(line)) || genericLines.some((re) => re.test(line))) continue;
    const text = line.trim();
    if (!causes.includes(text)) causes.push(text);
  }
  const picked = causes.length > 0 ? causes.slice(0, max) : lines.slice(-3).map((l) => l.trim());
  return picked.join(' / ');
}
