/**
 * Reading an administrator's reply (SPEC §6, 1806). A reply comes from anyone who can send mail, so
 * the parser does the cheap, bounded checks first and reads the body last:
 *   1. the header block (at most MAX_HEADER_BYTES) is parsed alone;
 *   2. the sender must be a configured administrator — a stranger's body is never parsed;
 *   3. with a trusted authserv-id, the IMAP server's own Authentication-Results must show the sender's
 *      domain authenticated (dkim=pass header.d=<domain>, or dmarc=pass header.from=<domain>);
 *   4. a message over `maxBytes` is refused unread;
 *   5. only then is the body decoded, and its lines are scanned with plain string operations (no
 *      regular expression runs on unbounded input), at most MAX_LINES lines of MAX_LINE_CHARS each.
 *
 * Reply format (anywhere in the unquoted text of the reply):
 *   Challenge: <40 hex digits>
 *   Decision: approve all | approve: <patch>, <patch> | reject
 *   Code: <8 digits>
 * Lines quoted with ">" are ignored, so replying with the notification quoted below is fine.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { challengePattern } from './approval-code.ts';
import { parseDecision, type Decision } from './decision.ts';

export const DEFAULT_MAX_REPLY_BYTES = 128 * 1024;
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_LINES = 2000;
const MAX_LINE_CHARS = 1000;

/** Why a reply was refused before its content was looked at. */
export type ReplyRefusal = 'unknown-sender' | 'unauthenticated' | 'too-large';

export interface ParseReplyOptions {
  /** Lowercase addresses of the administrators: mail from anyone else is refused on its headers. */
  senders: readonly string[];
  /**
   * The authserv-id the receiving mail server writes in its Authentication-Results headers (RFC 8601).
   * When set, a reply counts only if that server's topmost result authenticates the sender's domain.
   * The server must remove Authentication-Results headers claiming its id from incoming mail.
   */
  trustedAuthServId?: string | null;
  /** Larger messages are refused unparsed (default 128 KiB). */
  maxBytes?: number;
}

export interface ParsedReply {
  /** Lowercase sender address ('' when absent). */
  from: string;
  messageId: string | null;
  subject: string;
  /** Set when the body carries all three lines. */
  approval: { challenge: string; decision: Decision; code: string } | null;
  /** Why `approval` is null, for a reply that was read. */
  problem: string | null;
  /** Set when the reply was refused before its body was read. */
  rejected: ReplyRefusal | null;
  /** Sent by a machine (Auto-Submitted, Precedence bulk/list/junk): never answered, to avoid mail loops. */
  automatic: boolean;
}

/** The header block: bytes up to the first empty line (or the whole message when it has no body). */
function headerBlock(source: Buffer): Buffer | null {
  const window = source.subarray(0, MAX_HEADER_BYTES + 4);
  const crlf = window.indexOf('\r\n\r\n');
  const lf = window.indexOf('\n\n');
  const ends = [crlf === -1 ? -1 : crlf + 4, lf === -1 ? -1 : lf + 2].filter((n) => n > 0);
  if (ends.length > 0) return source.subarray(0, Math.min(...ends));
  return source.length <= MAX_HEADER_BYTES ? source : null;
}

/** Removes RFC 5322 comments "( … )" (nested, with backslash escapes) in one pass. */
function stripComments(text: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && depth > 0) i++;
    else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

const words = (text: string): string[] => text.split(/[ \t\r\n]+/).filter(Boolean);

/**
 * True when the topmost Authentication-Results header of `authServId` says the sender's domain passed
 * DKIM (header.d equal to the domain) or DMARC (header.from equal to the domain; servers that honour
 * ARC for forwarded mail report their ARC-based verdict there). Results of other ids are ignored.
 */
export function authenticatedBy(
  headerValues: readonly string[],
  authServId: string,
  domain: string,
): boolean {
  const want = authServId.toLowerCase();
  for (const value of headerValues) {
    const [head = '', ...results] = stripComments(value).split(';');
    if (words(head)[0]?.toLowerCase() !== want) continue;
    for (const result of results) {
      const [methodResult = '', ...props] = words(result);
      const [method, verdict] = methodResult.toLowerCase().split('=');
      const prop = new Map(
        props.map((p) => {
          const eq = p.indexOf('=');
          return [p.slice(0, eq).toLowerCase(), p.slice(eq + 1).toLowerCase()] as const;
        }),
      );
      if (verdict !== 'pass') continue;
      if (method === 'dkim' && prop.get('header.d') === domain) return true;
      if (method === 'dmarc' && prop.get('header.from') === domain) return true;
    }
    return false; // only the trusted server's own (topmost) header counts
  }
  return false;
}

function authResultsOf(mail: ParsedMail): string[] {
  return mail.headerLines
    .filter((h) => h.key === 'authentication-results')
    .map((h) => {
      const colon = h.line.indexOf(':');
      return h.line.slice(colon + 1);
    });
}

/** The values of the wanted "Name: value" lines of a text, first occurrence each; quoted lines skipped. */
export function extractFields(text: string, names: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  let start = 0;
  for (let n = 0; n < MAX_LINES && start <= text.length && found.size < names.length; n++) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const length = end - start;
    const raw = length <= MAX_LINE_CHARS ? text.slice(start, end) : '';
    start = end + 1;
    const line = raw.trim();
    if (line.startsWith('>')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (value && names.includes(name) && !found.has(name)) found.set(name, value);
  }
  return found;
}

/** Parses a raw RFC 5322 message. Never throws for bad content: `rejected` or `problem` says what is wrong. */
export async function parseReply(source: Buffer | string, options: ParseReplyOptions): Promise<ParsedReply> {
  const bytes = typeof source === 'string' ? Buffer.from(source) : source;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_REPLY_BYTES;
  const empty = { from: '', messageId: null, subject: '', approval: null, problem: null, automatic: false };
  const headers = headerBlock(bytes);
  if (!headers) return { ...empty, rejected: 'too-large' };
  const head = await simpleParser(headers, {
    skipHtmlToText: true,
    skipImageLinks: true,
    skipTextLinks: true,
  });
  const from = (head.from?.value[0]?.address ?? '').toLowerCase();
  const autoSubmitted = String(head.headers.get('auto-submitted') ?? 'no').toLowerCase();
  const precedence = String(head.headers.get('precedence') ?? '').toLowerCase();
  const base = {
    ...empty,
    from,
    messageId: head.messageId ?? null,
    subject: head.subject ?? '',
    automatic: autoSubmitted !== 'no' || ['bulk', 'list', 'junk'].includes(precedence),
  };
  if (!from || !options.senders.includes(from)) return { ...base, rejected: 'unknown-sender' };
  if (options.trustedAuthServId) {
    const domain = from.slice(from.lastIndexOf('@') + 1);
    if (!authenticatedBy(authResultsOf(head), options.trustedAuthServId, domain))
      return { ...base, rejected: 'unauthenticated' };
  }
  if (bytes.length > maxBytes) return { ...base, rejected: 'too-large' };
  const mail = await simpleParser(bytes, {
    skipHtmlToText: false,
    skipImageLinks: true,
    skipTextLinks: true,
  });
  const fields = extractFields(mail.text ?? '', ['challenge', 'decision', 'code']);
  const challenge = fields.get('challenge')?.toLowerCase();
  const decisionText = fields.get('decision');
  const code = fields.get('code');
  const refuse = (problem: string): ParsedReply => ({ ...base, rejected: null, problem });
  if (!challenge || !decisionText || !code)
    return refuse('the reply needs the lines "Challenge:", "Decision:" and "Code:"');
  if (!challengePattern.test(challenge)) return refuse('the challenge is not 40 hex digits');
  if (!/^\d{8}$/.test(code)) return refuse('the code must be 8 digits');
  let decision: Decision;
  try {
    decision = parseDecision(decisionText);
  } catch {
    return refuse(`the decision "${decisionText.slice(0, 60)}" is not understood`);
  }
  return { ...base, rejected: null, approval: { challenge, decision, code } };
}
