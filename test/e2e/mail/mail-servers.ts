/**
 * Real mail servers for the tests: dovecot (IMAP, own config in a temp dir, Maildir per user,
 * 127.0.0.1 on a free port) and an SMTP server (the smtp-server package) that delivers each
 * message into the recipient's Maildir, where dovecot serves it. With `tls`, dovecot requires TLS
 * (STARTTLS on the IMAP port, implicit TLS on the IMAPS port) and the SMTP server offers STARTTLS,
 * both with a certificate from the test's own CA. Either server can be stopped and started again on
 * the same port, for fault tests.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SMTPServer } from 'smtp-server';
import { ImapFlow } from 'imapflow';
import { simpleParser, type ParsedMail } from 'mailparser';
import { authenticate } from 'mailauth';
import { spawnProcess, waitFor } from '../../../src/core/index.ts';
import { freePort, tempDir } from '../monitor/fixtures.ts';

const mailUid = 65534; // nobody: dovecot refuses mail access as root

export interface MailWorld {
  domain: string;
  imapPort: number;
  /** Implicit-TLS IMAP port (0 without tls). */
  imapsPort: number;
  smtpPort: number;
  /** The CA certificate file clients must trust (with tls). */
  caCert: string | null;
  stopSmtp(): Promise<void>;
  startSmtp(): Promise<void>;
  stopImap(): Promise<void>;
  startImap(): Promise<void>;
  passwordOf(user: string): string;
  /** Messages in a user's INBOX, parsed, oldest first. */
  inbox(user: string): Promise<ParsedMail[]>;
  close(): Promise<void>;
}

async function portOpen(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(undefined));
  });
}

function createMaildir(root: string, user: string): string {
  const maildir = path.join(root, 'mail', user);
  for (const sub of ['tmp', 'new', 'cur']) {
    fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    fs.chownSync(path.join(maildir, sub), mailUid, mailUid);
  }
  fs.chownSync(maildir, mailUid, mailUid);
  return maildir;
}

function deliver(root: string, user: string, message: Buffer): void {
  const maildir = createMaildir(root, user);
  const name = `${Date.now()}.${randomBytes(6).toString('hex')}.understudy-test`;
  const tmp = path.join(maildir, 'tmp', name);
  fs.writeFileSync(tmp, message);
  fs.chownSync(tmp, mailUid, mailUid);
  fs.renameSync(tmp, path.join(maildir, 'new', name));
}

export interface MailWorldOptions {
  domain?: string;
  /** Server certificate and key (PEM files) and the CA that signed them: TLS required. */
  tls?: { cert: string; key: string; ca: string };
  /**
   * The receiving server authenticates mail as a real MX does: it verifies DKIM signatures and
   * DMARC (mailauth) against `dns` (a name → TXT records table standing in for DNS: the domain's
   * DKIM key and DMARC policy), removes any Authentication-Results header the message already
   * carries, and prepends its own under the authserv-id `authServId`.
   */
  authenticate?: { authServId: string; dns: ReadonlyMap<string, string[][]> };
}

/** The header block of a raw message without its Authentication-Results fields (continuations included). */
function withoutAuthResults(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end === -1 ? text : text.slice(0, end);
  const kept: string[] = [];
  let dropping = false;
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = /^authentication-results\s*:/i.test(line);
    if (!dropping) kept.push(line);
  }
  return Buffer.from(kept.join('\r\n') + (end === -1 ? '' : text.slice(end)), 'latin1');
}

export async function startMailWorld(
  users: readonly string[],
  options: MailWorldOptions = {},
): Promise<MailWorld> {
  const domain = options.domain ?? 'example.test';
  const tls = options.tls;
  const root = tempDir('us-mail');
  const passwords = new Map(users.map((u) => [u, randomBytes(8).toString('hex')]));
  fs.mkdirSync(path.join(root, 'mail'), { mode: 0o755 });
  fs.chownSync(path.join(root, 'mail'), mailUid, mailUid);
  fs.writeFileSync(
    path.join(root, 'users'),
    [...passwords].map(([u, p]) => `${u}:{PLAIN}${p}::::::`).join('\n') + '\n',
    { mode: 0o644 },
  );
  for (const u of users) createMaildir(root, u);
  const imapPort = await freePort();
  const imapsPort = tls ? await freePort() : 0;
  const conf = path.join(root, 'dovecot.conf');
  fs.writeFileSync(
    conf,
    `base_dir = ${root}/run
state_dir = ${root}/state
log_path = ${root}/dovecot.log
listen = 127.0.0.1
protocols = imap
${
  tls
    ? `ssl = required\nssl_cert = <${tls.cert}\nssl_key = <${tls.key}\ndisable_plaintext_auth = yes`
    : 'ssl = no\ndisable_plaintext_auth = no'
}
auth_mechanisms = plain login
mail_location = maildir:${root}/mail/%u
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${root}/users
}
userdb {
  driver = static
  args = uid=${mailUid} gid=${mailUid} home=${root}/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${imapsPort}
  }
}
`,
  );
  let dovecot = spawnProcess(['dovecot', '-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const waitImap = async (): Promise<void> => {
    if (!(await waitFor(() => portOpen(imapPort), { timeoutMs: 10_000, intervalMs: 50 }))) {
      const log = fs.existsSync(path.join(root, 'dovecot.log'))
        ? fs.readFileSync(path.join(root, 'dovecot.log'), 'utf8')
        : '';
      throw new Error(`dovecot did not start: ${log}`);
    }
  };

  const tlsFiles = tls ? { key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert) } : null;
  const newSmtp = (): SMTPServer =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: tlsFiles ? ['AUTH'] : ['STARTTLS', 'AUTH'],
      ...(tlsFiles ?? {}),
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          void (async () => {
            let message: Buffer = Buffer.concat(chunks);
            const auth = options.authenticate;
            if (auth) {
              message = withoutAuthResults(message);
              const result = await authenticate(message, {
                ip: session.remoteAddress,
                helo: session.hostNameAppearsAs,
                sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                mta: auth.authServId,
                disableArc: true,
                disableBimi: true,
                resolver: async (name: string, rr: string) => {
                  const records = rr === 'TXT' ? auth.dns.get(name.toLowerCase()) : undefined;
                  if (records) return records;
                  throw Object.assign(new Error(`${name} ${rr}: not found`), { code: 'ENOTFOUND' });
                },
              });
              message = Buffer.concat([Buffer.from(result.headers), message]);
            }
            try {
              for (const rcpt of session.envelope.rcptTo) {
                const [local, host] = rcpt.address.toLowerCase().split('@');
                if (host === domain && local && passwords.has(local)) deliver(root, local, message);
              }
              callback();
            } catch (error) {
              callback(error as Error);
            }
          })().catch((error: unknown) => callback(error as Error));
        });
      },
      onRcptTo(address, _session, callback) {
        const [local, host] = address.address.toLowerCase().split('@');
        if (host !== domain || !local || !passwords.has(local))
          return callback(new Error(`550 no such user ${address.address}`));
        callback();
      },
    });
  let smtp: SMTPServer | null = newSmtp();
  const smtpPort = await freePort();
  await new Promise<void>((resolve) => smtp?.listen(smtpPort, '127.0.0.1', resolve));

  const stopSmtp = async (): Promise<void> => {
    const server = smtp;
    smtp = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const startSmtp = async (): Promise<void> => {
    if (smtp) return;
    const server = newSmtp();
    await new Promise<void>((resolve) => server.listen(smtpPort, '127.0.0.1', resolve));
    smtp = server;
  };
  const stopImap = async (): Promise<void> => {
    dovecot.child.kill('SIGTERM');
    await dovecot.done;
  };
  const startImap = async (): Promise<void> => {
    dovecot = spawnProcess(['dovecot', '-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitImap();
  };
  const close = async (): Promise<void> => {
    await stopSmtp();
    await stopImap();
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    await waitImap();
  } catch (error) {
    await close();
    throw error;
  }

  return {
    domain,
    imapPort,
    imapsPort,
    smtpPort,
    caCert: tls?.ca ?? null,
    stopSmtp,
    startSmtp,
    stopImap,
    startImap,
    passwordOf: (user) => passwords.get(user) ?? '',
    async inbox(user) {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: imapPort,
        secure: false,
        doSTARTTLS: tls ? true : undefined,
        tls: tls ? { ca: fs.readFileSync(tls.ca) } : undefined,
        auth: { user, pass: passwords.get(user) ?? '' },
        logger: false,
      });
      await client.connect();
      try {
        const lock = await client.getMailboxLock('INBOX');
        try {
          const out: ParsedMail[] = [];
          const box = client.mailbox;
          if (!box || box.exists === 0) return out;
          for await (const m of client.fetch('1:*', { source: true }))
            if (m.source) out.push(await simpleParser(m.source));
          return out;
        } finally {
          lock.release();
        }
      } finally {
        await client.logout();
      }
    },
    close,
  };
}
