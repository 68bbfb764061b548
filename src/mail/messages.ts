/**
 * The mails the monitor writes (SPEC §6, 1804–1805) and the replies it reads (1806).
 *
 * Reply format (anywhere in the unquoted text of the reply):
 *   Challenge: <40 hex digits>
 *   Decision: approve all | approve: <patch>, <patch> | reject
 *   Code: <8 digits>
 * Lines quoted with ">" are ignored, so replying with the notification quoted below is fine.
 */
import { simpleParser } from 'mailparser';
import { challengePattern } from './approval-code.ts';
import { parseDecision, type Decision } from './decision.ts';

export interface NotifiedPatch {
  name: string;
  categories: string[];
  description: string;
  publishedAt: string | null;
  sourceFeed: string | null;
}

export interface OutgoingMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  inReplyTo?: string;
  references?: string;
}

export interface ComposeNotificationOptions {
  from: string;
  to: string;
  adminName: string;
  patches: readonly NotifiedPatch[];
  challenge: string;
  expiresAt: string;
  /** Signed approval links, when the daemon has a public URL. */
  links?: { approveAll: string; reject: string };
}

export function composeNotification(o: ComposeNotificationOptions): OutgoingMail {
  const security = o.patches.filter((p) => p.categories.includes('security')).length;
  const lines = [
    `Hello ${o.adminName},`,
    '',
    `understudy found ${o.patches.length} new patch${o.patches.length === 1 ? '' : 'es'}${security ? ` (${security} security)` : ''}:`,
    '',
    ...o.patches.flatMap((p) => [
      `  * ${p.name}  [${p.categories.join(', ')}]${p.publishedAt ? `  published ${p.publishedAt.slice(0, 10)}` : ''}${p.sourceFeed ? `  from ${p.sourceFeed}` : ''}`,
      ...(p.description ? [`      ${p.description.split('\n')[0]?.slice(0, 300) ?? ''}`] : []),
    ]),
    '',
    'To decide, reply to this mail with these three lines:',
    '',
    `Challenge: ${o.challenge}`,
    'Decision: approve all        (or "approve: <patch>, <patch>", or "reject")',
    'Code: <the code from: understudy approve-code ' + o.challenge + ' --decision "<decision>">',
    '',
    `The challenge expires at ${o.expiresAt}. A code is valid for the decision it was computed for, once.`,
    ...(o.links
      ? [
          '',
          'Or open one of these signed links (they expire with the challenge):',
          `  approve all: ${o.links.approveAll}`,
          `  reject:      ${o.links.reject}`,
        ]
      : []),
    '',
    '-- understudy patch monitor',
  ];
  return {
    from: o.from,
    to: o.to,
    subject: `[understudy] ${o.patches.length} new patch${o.patches.length === 1 ? '' : 'es'}${security ? ` (${security} security)` : ''} [challenge ${o.challenge.slice(0, 8)}]`,
    text: `${lines.join('\n')}\n`,
  };
}

export function composeAnswer(o: {
  from: string;
  to: string;
  subject: string;
  inReplyTo?: string;
  accepted: boolean;
  text: string;
}): OutgoingMail {
  const subject = o.subject.startsWith('Re:') ? o.subject : `Re: ${o.subject || 'your reply'}`;
  return {
    from: o.from,
    to: o.to,
    subject: `${subject} — ${o.accepted ? 'accepted' : 'rejected'}`,
    text: `${o.text}\n\n-- understudy patch monitor\n`,
    inReplyTo: o.inReplyTo,
    references: o.inReplyTo,
  };
}

export interface ParsedReply {
  /** Lowercase sender address ('' when absent). */
  from: string;
  messageId: string | null;
  subject: string;
  /** Set when the body carries all three lines. */
  approval: { challenge: string; decision: Decision; code: string } | null;
  /** Why `approval` is null. */
  problem: string | null;
  /** Sent by a machine (Auto-Submitted, Precedence bulk/list/junk): never answered, to avoid mail loops. */
  automatic: boolean;
}

function field(lines: readonly string[], name: string): string | undefined {
  const re = new RegExp(`^\\s*${name}\\s*:\\s*(.+?)\\s*$`, 'i');
  for (const line of lines) {
    const m = re.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/** Parses a raw RFC 5322 message. Never throws for bad content: `problem` says what is wrong. */
export async function parseReply(source: Buffer | string): Promise<ParsedReply> {
  const mail = await simpleParser(source, { skipHtmlToText: false, skipImageLinks: true });
  const from = (mail.from?.value[0]?.address ?? '').toLowerCase();
  const autoSubmitted = String(mail.headers.get('auto-submitted') ?? 'no').toLowerCase();
  const precedence = String(mail.headers.get('precedence') ?? '').toLowerCase();
  const automatic = autoSubmitted !== 'no' || ['bulk', 'list', 'junk'].includes(precedence);
  const base = { from, messageId: mail.messageId ?? null, subject: mail.subject ?? '', automatic };
  const lines = (mail.text ?? '').split(/\r?\n/).filter((l) => !l.trimStart().startsWith('>'));
  const challenge = field(lines, 'Challenge')?.toLowerCase();
  const decisionText = field(lines, 'Decision');
  const code = field(lines, 'Code');
  if (!challenge || !decisionText || !code)
    return {
      ...base,
      approval: null,
      problem: 'the reply needs the lines "Challenge:", "Decision:" and "Code:"',
    };
  if (!challengePattern.test(challenge))
    return { ...base, approval: null, problem: 'the challenge is not 40 hex digits' };
  if (!/^\d{8}$/.test(code)) return { ...base, approval: null, problem: 'the code must be 8 digits' };
  let decision: Decision;
  try {
    decision = parseDecision(decisionText);
  } catch {
    return {
      ...base,
      approval: null,
      problem: `the decision "${decisionText.slice(0, 60)}" is not understood`,
    };
  }
  return { ...base, approval: { challenge, decision, code }, problem: null };
}
