/**
 * The patch-server index: `index.json` next to the patch files, with a detached ed25519
 * signature `index.json.sig` (base64 of the 64 signature bytes). Publishers sign with
 * `signPatchIndex` or `openssl pkeyutl -sign -rawin -inkey key.pem -in index.json | base64 -w0`.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { UnderstudyError, checkRelativePath } from '../core/index.ts';
import {
  patchCategories,
  patchFormats,
  validatePatchName,
  type PatchCategory,
  type PatchFormat,
} from '../catalogue/index.ts';

const entrySchema = z.object({
  name: z.string().min(1),
  categories: z.array(z.enum(patchCategories as [PatchCategory, ...PatchCategory[]])).min(1),
  published: z.iso.datetime({ offset: true }),
  description: z.string().max(4000).default(''),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  format: z.enum(patchFormats as [PatchFormat, ...PatchFormat[]]),
  /** The patch file, relative to the index (no "..", no absolute path). */
  file: z.string().min(1),
});

const indexSchema = z.object({
  version: z.literal(1),
  generated: z.iso.datetime({ offset: true }),
  patches: z.array(entrySchema),
});

export type PatchIndexEntry = z.infer<typeof entrySchema>;
export type PatchIndex = z.infer<typeof indexSchema>;

/** Parses a public key: PEM (SPKI) or base64 of the 32 raw ed25519 bytes. */
export function parseEd25519PublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('-----BEGIN')) return createPublicKey(trimmed);
    const raw = Buffer.from(trimmed, 'base64');
    if (raw.length !== 32) throw new Error(`expected 32 bytes, got ${raw.length}`);
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
      format: 'jwk',
    });
  } catch (error) {
    throw new UnderstudyError(
      'CONFIG_INVALID',
      `The index public key is not an ed25519 key: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Base64 of the raw 32 public-key bytes of an ed25519 key. */
export function ed25519PublicKeyBase64(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url').toString('base64');
}

export function signPatchIndex(index: Buffer, privateKeyPem: string | KeyObject): string {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem;
  return sign(null, index, key).toString('base64');
}

/** Throws FEED_SIGNATURE_INVALID unless `signature` (base64 or raw) is a valid signature of `index`. */
export function verifyPatchIndex(options: {
  index: Buffer;
  signature: Buffer | null;
  publicKey: KeyObject;
  url: string;
}): void {
  if (!options.signature || options.signature.length === 0) {
    throw new UnderstudyError(
      'FEED_SIGNATURE_INVALID',
      `The index ${options.url} has no signature (index.json.sig is missing or empty)`,
    );
  }
  const text = options.signature.toString('utf8').trim();
  const sig = /^[A-Za-z0-9+/=\s]+$/.test(text) ? Buffer.from(text, 'base64') : options.signature;
  let ok = false;
  if (sig.length === 64) ok = verify(null, options.index, options.publicKey, sig);
  if (!ok)
    throw new UnderstudyError(
      'FEED_SIGNATURE_INVALID',
      `The signature of the index ${options.url} does not verify with the configured public key`,
    );
}

/** Parses and validates the (already verified) index; throws FEED_INDEX_INVALID naming the first problem. */
export function parsePatchIndex(body: Buffer, url: string): PatchIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new UnderstudyError(
      'FEED_INDEX_INVALID',
      `The index ${url} is not JSON: ${(error as Error).message}`,
    );
  }
  const parsed = indexSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UnderstudyError(
      'FEED_INDEX_INVALID',
      `The index ${url} is malformed at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const names = new Set<string>();
  for (const entry of parsed.data.patches) {
    try {
      validatePatchName(entry.name);
    } catch {
      throw new UnderstudyError(
        'FEED_INDEX_INVALID',
        `The index ${url} names an invalid patch "${entry.name.slice(0, 80)}"`,
      );
    }
    if (names.has(entry.name))
      throw new UnderstudyError('FEED_INDEX_INVALID', `The index ${url} lists patch "${entry.name}" twice`);
    names.add(entry.name);
    checkRelativePath(entry.file, {
      what: `The index ${url} points patch "${entry.name}" outside the patch directory:`,
      code: 'FEED_INDEX_INVALID',
    });
  }
  return parsed.data;
}
