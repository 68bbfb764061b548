import { UnderstudyError } from './errors.ts';

/** 32 characters of an alphabet of at least 16 symbols carry at least 128 bits. */
export const minTokenLength = 32;

/** Throws CONFIG_INVALID for a token too short or too uniform to resist guessing (< 128 bits). */
export function requireStrongToken(token: string, where: string): void {
  if (token.length < minTokenLength || new Set(token).size < 8)
    throw new UnderstudyError(
      'CONFIG_INVALID',
      `The API token in ${where} is too weak (${token.length} characters); it needs at least 128 bits`,
      {
        hint: `Use ${minTokenLength} or more random characters (openssl rand -hex 16), or remove it: \`understudy serve\` makes one on first start.`,
      },
    );
}
