/**
 * The one error type of understudy. Every error carries a stable code from the catalogue in
 * `error-codes.ts`, a message that names the thing involved, and a hint saying what to do.
 * Errors are rendered only at the edges (CLI, API).
 */
import { errorCatalogue, type ErrorCode } from './error-codes.ts';

export interface UnderstudyErrorOptions {
  /** What the operator can do about it. Defaults to the catalogue's fix for the code. */
  hint?: string;
  cause?: unknown;
  /** Extra machine-readable facts (paths, names, numbers) for --json and the API. */
  details?: Record<string, unknown>;
}

export class UnderstudyError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: UnderstudyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UnderstudyError';
    this.code = code;
    this.hint = options.hint ?? errorCatalogue[code].fix;
    this.details = options.details ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; hint: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

export function isUnderstudyError(error: unknown, code?: ErrorCode): error is UnderstudyError {
  return error instanceof UnderstudyError && (code === undefined || error.code === code);
}

/** True for a Node.js system error with the given errno code (e.g. 'ENOENT'). */
export function isErrno(error: unknown, code: string): error is NodeJS.ErrnoException {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
