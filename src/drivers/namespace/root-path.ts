/**
 * Resolves a path inside an LC's root filesystem the way the LC itself would (symlinks are followed
 * relative to the LC's root, never the host's), so writing "into the LC" can never touch the host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, isErrno } from '../../core/index.ts';

export function resolveInRoot(root: string, lcPath: string, options: { followLast?: boolean } = {}): string {
  if (!lcPath.startsWith('/'))
    throw new UnderstudyError('PATH_OUTSIDE_ROOT', `"${lcPath}" is not an absolute path inside the LC`);
  const parts = lcPath.split('/').filter((p) => p && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    const isLast = parts.length === 0;
    let stat: fs.Stats | undefined;
    try {
      stat = fs.lstatSync(candidate);
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
    if (stat?.isSymbolicLink() && (!isLast || options.followLast !== false)) {
      if (++links > 40)
        throw new UnderstudyError(
          'PATH_OUTSIDE_ROOT',
          `Too many symbolic links resolving "${lcPath}" inside the LC`,
        );
      const target = fs.readlinkSync(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}
