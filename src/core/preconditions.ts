import { UnderstudyError } from './errors.ts';

/** Throws NOT_ROOT unless the process runs as root. */
export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UnderstudyError('NOT_ROOT', `${what} needs root (running as uid ${process.getuid()})`);
  }
}
