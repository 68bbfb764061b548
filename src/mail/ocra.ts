/**
 * OATH OCRA, RFC 6287: a challenge–response one-time code from a shared secret.
 * `generateOcra` implements the algorithm of the RFC (section 5 and the reference code of
 * appendix A) for any suite of the form `OCRA-1:HOTP-<SHA1|SHA256|SHA512>-<0|4..10>:<DataInput>`,
 * DataInput = [C-]Q<A|N|H><04..64>[-P<SHA1|SHA256|SHA512>][-S<nnn>][-T<n><S|M|H>].
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { UnderstudyError } from '../core/index.ts';

type Hash = 'sha1' | 'sha256' | 'sha512';

export interface OcraSuite {
  text: string;
  hash: Hash;
  digits: number;
  counter: boolean;
  question: { format: 'A' | 'N' | 'H'; maxLength: number };
  password?: Hash;
  sessionLength?: number;
  /** Time step in seconds. */
  timeStepSeconds?: number;
}

export interface OcraInput {
  /** C: the counter (8-byte big-endian). */
  counter?: bigint | number;
  /** Q: the challenge, in the suite's format (alphanumeric, decimal or hex). */
  question: string;
  /** P: the hash of the PIN, hex. */
  passwordHash?: string;
  /** S: session information, hex. */
  session?: string;
  /** T: the number of time steps since the epoch. */
  timeSteps?: bigint | number;
}

const hashLength: Record<Hash, number> = { sha1: 20, sha256: 32, sha512: 64 };
const stepUnit: Record<string, number> = { S: 1, M: 60, H: 3600 };

function invalidSuite(suite: string, why: string): UnderstudyError {
  return new UnderstudyError('INVALID_ARGUMENT', `OCRA suite "${suite}" is invalid: ${why}`);
}

function parseHash(text: string, suite: string): Hash {
  const hash = text.toLowerCase();
  if (hash === 'sha1' || hash === 'sha256' || hash === 'sha512') return hash;
  throw invalidSuite(suite, `unknown hash ${text}`);
}

export function parseOcraSuite(text: string): OcraSuite {
  const parts = text.split(':');
  if (parts.length !== 3 || parts[0] !== 'OCRA-1')
    throw invalidSuite(text, 'expected OCRA-1:<CryptoFunction>:<DataInput>');
  const crypto = /^HOTP-(SHA1|SHA256|SHA512)-(\d+)$/.exec(parts[1] ?? '');
  if (!crypto) throw invalidSuite(text, 'expected HOTP-SHAx-t');
  const digits = Number(crypto[2]);
  if (digits !== 0 && (digits < 4 || digits > 10)) throw invalidSuite(text, 'digits must be 0 or 4–10');
  const suite: Partial<OcraSuite> & { text: string } = {
    text,
    hash: parseHash(crypto[1] ?? '', text),
    digits,
    counter: false,
  };
  const inputs = (parts[2] ?? '').split('-');
  let i = 0;
  if (inputs[i] === 'C') {
    suite.counter = true;
    i++;
  }
  const q = /^Q([ANH])(\d\d)$/.exec(inputs[i] ?? '');
  if (!q) throw invalidSuite(text, 'the question (QA/QN/QH with a length 04–64) is required');
  const maxLength = Number(q[2]);
  if (maxLength < 4 || maxLength > 64) throw invalidSuite(text, 'question length must be 04–64');
  suite.question = { format: q[1] as 'A' | 'N' | 'H', maxLength };
  i++;
  for (; i < inputs.length; i++) {
    const part = inputs[i] ?? '';
    let m: RegExpExecArray | null;
    if (
      (m = /^P(SHA1|SHA256|SHA512)$/.exec(part)) &&
      suite.password === undefined &&
      suite.sessionLength === undefined &&
      suite.timeStepSeconds === undefined
    ) {
      suite.password = parseHash(m[1] ?? '', text);
    } else if (
      (m = /^S(\d\d\d)$/.exec(part)) &&
      suite.sessionLength === undefined &&
      suite.timeStepSeconds === undefined
    ) {
      suite.sessionLength = Number(m[1]);
    } else if ((m = /^T(\d{1,2})([SMH])$/.exec(part)) && suite.timeStepSeconds === undefined) {
      const n = Number(m[1]);
      const unit = m[2] ?? 'S';
      const limits: Record<string, number> = { S: 59, M: 59, H: 48 };
      if (n < 1 || n > (limits[unit] ?? 0)) throw invalidSuite(text, `time step ${part} out of range`);
      suite.timeStepSeconds = n * (stepUnit[unit] ?? 1);
    } else {
      throw invalidSuite(text, `unexpected data input "${part}"`);
    }
  }
  return suite as OcraSuite;
}

function hexBytes(hex: string, what: string): Buffer {
  if (!/^([0-9a-fA-F]{2})*$/.test(hex))
    throw new UnderstudyError('INVALID_ARGUMENT', `${what} must be an even number of hex digits`);
  return Buffer.from(hex, 'hex');
}

function questionBytes(suite: OcraSuite, question: string): Buffer {
  // Like the RFC's reference code (and its mutual-mode vectors, which send 16 characters under
  // QA08), the declared length is not enforced here; only the 128-byte field is a hard limit.
  const { format } = suite.question;
  if (question.length === 0)
    throw new UnderstudyError('INVALID_ARGUMENT', `The OCRA challenge is empty (suite ${suite.text})`);
  let hex: string;
  if (format === 'N') {
    if (!/^\d+$/.test(question))
      throw new UnderstudyError('INVALID_ARGUMENT', 'A numeric OCRA challenge must be decimal digits');
    hex = BigInt(question).toString(16);
    // The RFC's reference code left-aligns the hex digits of the number; an odd count gets a trailing 0.
  } else if (format === 'H') {
    if (!/^[0-9a-fA-F]+$/.test(question))
      throw new UnderstudyError('INVALID_ARGUMENT', 'A hex OCRA challenge must be hex digits');
    hex = question;
  } else {
    hex = Buffer.from(question, 'utf8').toString('hex');
  }
  if (hex.length % 2 === 1) hex += '0';
  if (hex.length > 256)
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `The OCRA challenge is longer than 128 bytes (suite ${suite.text})`,
    );
  const out = Buffer.alloc(128);
  Buffer.from(hex, 'hex').copy(out);
  return out;
}

function uint64(value: bigint | number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

/** Computes the OCRA response for `input` under `suite` with the shared `key`. */
export function generateOcra(suiteText: string | OcraSuite, key: Buffer, input: OcraInput): string {
  const suite = typeof suiteText === 'string' ? parseOcraSuite(suiteText) : suiteText;
  const parts: Buffer[] = [Buffer.from(suite.text, 'ascii'), Buffer.from([0])];
  if (suite.counter) {
    if (input.counter === undefined)
      throw new UnderstudyError('INVALID_ARGUMENT', `Suite ${suite.text} needs a counter`);
    parts.push(uint64(input.counter));
  }
  parts.push(questionBytes(suite, input.question));
  if (suite.password) {
    const p = hexBytes(input.passwordHash ?? '', 'The PIN hash');
    if (p.length !== hashLength[suite.password])
      throw new UnderstudyError(
        'INVALID_ARGUMENT',
        `The PIN hash must be ${hashLength[suite.password]} bytes for ${suite.text}`,
      );
    parts.push(p);
  }
  if (suite.sessionLength !== undefined) {
    const s = hexBytes(input.session ?? '', 'The session information');
    const padded = Buffer.alloc(suite.sessionLength);
    s.copy(padded, Math.max(0, suite.sessionLength - s.length));
    parts.push(padded);
  }
  if (suite.timeStepSeconds !== undefined) {
    if (input.timeSteps === undefined)
      throw new UnderstudyError('INVALID_ARGUMENT', `Suite ${suite.text} needs a time step count`);
    parts.push(uint64(input.timeSteps));
  }
  const mac = createHmac(suite.hash, key).update(Buffer.concat(parts)).digest();
  if (suite.digits === 0) return mac.toString('hex');
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** suite.digits).padStart(suite.digits, '0');
}

/** Time steps of `suite` at `at` (for T-suites). */
export function ocraTimeSteps(suite: OcraSuite, at: Date): bigint {
  return BigInt(Math.floor(at.getTime() / 1000 / (suite.timeStepSeconds ?? 1)));
}

/** Compares two codes in constant time (with respect to their content). */
export function codesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}
