/**
 * The mails the monitor writes (SPEC §6, 1804–1805) and the replies it reads (1806).
 * Replies are read by reply.ts.
 */

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
