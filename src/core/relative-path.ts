/**
 * One check for "a relative path from an untrusted source stays inside its base": patch files named
 * by a patch index, `Filename:` fields of an apt Packages index, any path a server or an LC hands us.
 * The text is normalised first — percent-decoding repeated until it no longer changes (so %2e%2e and
 * %252e%252e are "..", %2f is "/"), backslashes read as slashes (URL parsers do that for http) — and
 * only then checked: not empty, not absolute, no scheme, no NUL or control characters, no "." or ".."
 * segment.
 */
import { UnderstudyError } from './errors.ts';

function decodeFully(text: string): string {
  let current = text;
  for (let i = 0; i < 5; i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return current; // a stray "%": not an encoding, left as is
    }
    if (next === current) return current;
    current = next;
  }
  return current;
}

/** Why `relative` is not a safe relative path, or null when it is. */
export function relativePathProblem(relative: string): string | null {
  if (relative.length === 0) return 'it is empty';
  const normal = decodeFully(relative).replace(/\\/g, '/');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(normal)) return 'it contains control characters';
  if (normal.startsWith('/')) return 'it is absolute';
  if (/^[a-z][a-z0-9+.-]*:/i.test(normal)) return 'it names a scheme';
  const segments = normal.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return 'it has a "." or ".." segment';
  return null;
}

/** Throws `code` naming `what` when `relative` would leave its base (see relativePathProblem). */
export function checkRelativePath(
  relative: string,
  o: { what: string; code: 'FEED_INDEX_INVALID' | 'PATH_OUTSIDE_ROOT' | 'INVALID_ARGUMENT' },
): string {
  const problem = relativePathProblem(relative);
  if (problem)
    throw new UnderstudyError(o.code, `${o.what} "${relative.slice(0, 80)}" is refused: ${problem}`, {
      details: { path: relative.slice(0, 200) },
    });
  return relative;
}
