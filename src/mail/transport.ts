/**
 * The mail side effects behind narrow interfaces: sending through SMTP (nodemailer) and reading
 * unseen messages from an IMAP mailbox (imapflow).
 *
 * TLS is required by default: `secure` means implicit TLS, otherwise STARTTLS must succeed before
 * anything else is sent (a server that does not offer it, or a man in the middle who strips it, makes
 * the connection fail). The server's certificate is verified against the system CAs or `ca`.
 * `insecure` turns both off — plaintext allowed, any certificate accepted — for tests only.
 */
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';
import { UnderstudyError } from '../core/index.ts';
import type { OutgoingMail } from './messages.ts';

export interface MailServerSettings {
  host: string;
  port: number;
  /** Implicit TLS (SMTPS 465, IMAPS 993); otherwise STARTTLS, required unless `insecure`. */
  secure: boolean;
  user?: string;
  password?: string;
  /** Allow plaintext and unverified certificates. For tests against local servers only. */
  insecure?: boolean;
  /** CA certificates (PEM) to verify the server with, instead of the system's. */
  ca?: Buffer | null;
}

/** Limits of one poll of the mailbox. */
export interface MailboxLimits {
  /** Messages fetched per poll at most; the rest wait for the next poll (oldest first). */
  maxMessages: number;
  /** Larger messages are not downloaded: they come back with `source: null`. */
  maxMessageBytes: number;
}

export const defaultMailboxLimits: MailboxLimits = { maxMessages: 20, maxMessageBytes: 128 * 1024 };

function tlsOptions(settings: MailServerSettings): {
  rejectUnauthorized: boolean;
  ca?: Buffer;
  servername?: string;
} {
  return {
    rejectUnauthorized: !settings.insecure,
    ...(settings.ca ? { ca: settings.ca } : {}),
  };
}

export interface MailSender {
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
  close(): void;
}

export interface IncomingMessage {
  uid: number;
  /** The raw message; null when it is larger than the limit (it was not downloaded). */
  source: Buffer | null;
  /** Size the server reported. */
  size: number;
}

export interface MailboxReader {
  /** Unseen messages, oldest first, at most `maxMessages`; big ones without their source. */
  fetchUnseen(): Promise<IncomingMessage[]>;
  markSeen(uids: readonly number[]): Promise<void>;
  close(): Promise<void>;
}

export function createSmtpSender(settings: MailServerSettings, timeoutMs = 30_000): MailSender {
  const transport = nodemailer.createTransport({
    host: settings.host,
    port: settings.port,
    secure: settings.secure,
    requireTLS: !settings.secure && !settings.insecure,
    tls: tlsOptions(settings),
    auth: settings.user ? { user: settings.user, pass: settings.password ?? '' } : undefined,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    async send(mail) {
      try {
        const info = (await transport.sendMail({
          ...mail,
          headers: { 'Auto-Submitted': 'auto-generated' },
        })) as { messageId: string };
        return { messageId: info.messageId };
      } catch (error) {
        throw new UnderstudyError(
          'MAIL_FAILED',
          `Sending mail to ${mail.to} through ${settings.host}:${settings.port} failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
    },
    close() {
      transport.close();
    },
  };
}

/** Opens an IMAP connection per call batch; the daemon's poll interval keeps this cheap. */
export function createImapReader(
  settings: MailServerSettings & { mailbox: string } & Partial<MailboxLimits>,
  timeoutMs = 30_000,
): MailboxReader {
  const limits: MailboxLimits = {
    maxMessages: settings.maxMessages ?? defaultMailboxLimits.maxMessages,
    maxMessageBytes: settings.maxMessageBytes ?? defaultMailboxLimits.maxMessageBytes,
  };
  let client: ImapFlow | null = null;
  const connect = async (): Promise<ImapFlow> => {
    if (client?.usable) return client;
    const c = new ImapFlow({
      host: settings.host,
      port: settings.port,
      secure: settings.secure,
      auth: { user: settings.user ?? '', pass: settings.password ?? '' },
      logger: false,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      doSTARTTLS: settings.secure || settings.insecure ? undefined : true,
      tls: tlsOptions(settings),
      // A server announcing a literal far beyond the message cap is cut off, not buffered.
      maxLiteralSize: limits.maxMessageBytes + 64 * 1024,
      maxResponseSize: limits.maxMessageBytes + 256 * 1024,
      disableAutoIdle: true,
    });
    c.on('error', () => {
      client = null; // reconnect at the next call
    });
    try {
      await c.connect();
    } catch (error) {
      throw new UnderstudyError(
        'MAIL_FAILED',
        `Connecting to IMAP ${settings.host}:${settings.port} failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    client = c;
    return c;
  };
  return {
    async fetchUnseen() {
      const c = await connect();
      const lock = await c.getMailboxLock(settings.mailbox);
      try {
        // NOOP makes the server report messages delivered since the mailbox was selected.
        await c.noop();
        const unseen = (await c.search({ seen: false }, { uid: true })) || [];
        const uids = unseen.sort((a, b) => a - b).slice(0, limits.maxMessages);
        const out: IncomingMessage[] = [];
        if (uids.length === 0) return out;
        // Sizes first: only messages within the cap are downloaded.
        const sizes = new Map<number, number>();
        for await (const message of c.fetch(uids, { uid: true, size: true }, { uid: true }))
          sizes.set(message.uid, message.size ?? Number.POSITIVE_INFINITY);
        const small = uids.filter((uid) => (sizes.get(uid) ?? Infinity) <= limits.maxMessageBytes);
        for (const uid of uids)
          if (!small.includes(uid)) out.push({ uid, source: null, size: sizes.get(uid) ?? -1 });
        if (small.length > 0)
          for await (const message of c.fetch(small, { source: true, uid: true }, { uid: true })) {
            const source = message.source ?? null;
            const tooBig = source !== null && source.length > limits.maxMessageBytes;
            out.push({ uid: message.uid, source: tooBig ? null : source, size: source?.length ?? -1 });
          }
        return out.sort((a, b) => a.uid - b.uid);
      } finally {
        lock.release();
      }
    },
    async markSeen(uids) {
      if (uids.length === 0) return;
      const c = await connect();
      const lock = await c.getMailboxLock(settings.mailbox);
      try {
        await c.messageFlagsAdd([...uids], ['\\Seen'], { uid: true });
      } finally {
        lock.release();
      }
    },
    async close() {
      const c = client;
      client = null;
      if (c) await c.logout().catch(() => c.close());
    },
  };
}
