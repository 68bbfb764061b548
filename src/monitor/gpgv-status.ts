/**
 * Judging an OpenPGP signature by what gpgv reports on `--status-fd`, not by its exit code: gpgv exits
 * 0 for a signature made by an expired or revoked key, or with a weak digest, as long as it verifies.
 * A signature counts only when its block (from NEWSIG to the next) has GOODSIG, no EXPSIG, EXPKEYSIG,
 * REVKEYSIG, BADSIG or ERRSIG, and a VALIDSIG whose key (or primary key) fingerprint is an accepted
 * one and whose digest is SHA-224 or stronger.
 */

/** OpenPGP hash algorithm ids accepted (RFC 4880 §9.4): SHA256, SHA384, SHA512, SHA224. */
const strongDigests = new Set(['8', '9', '10', '11']);
const badStatuses = ['EXPSIG', 'EXPKEYSIG', 'REVKEYSIG', 'BADSIG', 'ERRSIG'] as const;

export type SignatureJudgement = { ok: true; fingerprint: string } | { ok: false; reason: string };

/** Normalises a fingerprint as configured (spaces allowed, any case) to 40 upper-case hex digits. */
export function normaliseFingerprint(text: string): string {
  return text.replace(/\s+/g, '').toUpperCase();
}

/**
 * `accepted` is the list of fingerprints allowed to sign, or `any-key-in-keyring`: every key of the
 * keyring gpgv used may sign (apt's Signed-By rule, for a keyring that holds only the archive's keys,
 * such as debian-archive-keyring's).
 */
export function judgeGpgvStatus(
  status: string,
  accepted: readonly string[] | 'any-key-in-keyring',
): SignatureJudgement {
  const anyKey = accepted === 'any-key-in-keyring';
  const wanted = new Set(anyKey ? [] : accepted.map(normaliseFingerprint));
  if (!anyKey && wanted.size === 0)
    return { ok: false, reason: 'no signing key fingerprint is configured for the feed' };
  const blocks: string[][][] = [];
  for (const line of status.split('\n')) {
    if (!line.startsWith('[GNUPG:] ')) continue;
    const words = line.slice('[GNUPG:] '.length).trim().split(' ');
    if (words[0] === 'NEWSIG') blocks.push([]);
    blocks[blocks.length - 1]?.push(words);
  }
  const reasons: string[] = [];
  for (const block of blocks) {
    const bad = block.find((w) => (badStatuses as readonly string[]).includes(w[0] ?? ''));
    if (bad) {
      reasons.push(`${bad[0]} ${bad[1] ?? ''}`.trim());
      continue;
    }
    if (!block.some((w) => w[0] === 'GOODSIG')) {
      reasons.push('no good signature');
      continue;
    }
    const valid = block.find((w) => w[0] === 'VALIDSIG');
    const fingerprint = valid?.[1] ?? '';
    const primary = valid?.[10] ?? fingerprint;
    const digest = valid?.[8] ?? '';
    if (!anyKey && !wanted.has(fingerprint) && !wanted.has(primary)) {
      reasons.push(`signed by ${primary || 'an unknown key'}, not a configured key`);
      continue;
    }
    if (!strongDigests.has(digest)) {
      reasons.push(`weak digest algorithm ${digest} (SHA-1 or older)`);
      continue;
    }
    return { ok: true, fingerprint: primary };
  }
  return { ok: false, reason: reasons.join('; ') || 'no signature' };
}
