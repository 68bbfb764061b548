/**
 * The mail side effects behind narrow interfaces: sending through SMTP (nodemailer) and reading
 * unseen messages from an IMAP mailbox (imapflow).
 */
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';
import { UnderstudyError } from '../core/index.ts';
import type { OutgoingMail } from './messages.ts';

export interface MailServerSettings {
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  password?: string;
}

export interface MailSender {
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
  close(): void;
}

export interface IncomingMessage {
  uid: number;
  source: Buffer;
}

export interface MailboxReader {
  /** Unseen messages, oldest first. */
  fetchUnseen(): Promise<IncomingMessage[]>;
  markSeen(uids: readonly number[]): Promise<void>;
  close(): Promise<void>;
}

export function createSmtpSender(settings: MailServerSettings, timeoutMs = 30_000): MailSender {
  const transport = nodemailer.createTransport({
    host: settings.host,
    port: settings.port,
    secure: settings.secure,
    ignoreTLS: !settings.secure && settings.host === '127.0.0.1',
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
  settings: MailServerSettings & { mailbox: string },
  timeoutMs = 30_000,
): MailboxReader {
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
      tls: { rejectUnauthorized: settings.host !== '127.0.0.1' },
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
        const uids = (await c.search({ seen: false }, { uid: true })) || [];
        const out: IncomingMessage[] = [];
        if (uids.length === 0) return out;
        for await (const message of c.fetch(uids, { source: true, uid: true }, { uid: true })) {
          if (message.source) out.push({ uid: message.uid, source: message.source });
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
