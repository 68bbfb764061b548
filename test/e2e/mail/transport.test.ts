/**
 * The mail transport against real servers (dovecot, smtp-server): TLS is required and verified by
 * default (a test CA made here signs the servers' certificate), and one IMAP poll is bounded in
 * message count and size.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createImapReader, createSmtpSender, type MailServerSettings } from '../../../src/mail/index.ts';
import { createTestCa, type TestCa } from '../../helpers/test-ca.ts';
import { tempDir } from '../monitor/fixtures.ts';
import { startMailWorld, type MailWorld } from './mail-servers.ts';

const note = (to: string, i = 0): { from: string; to: string; subject: string; text: string } => ({
  from: 'understudy@example.test',
  to,
  subject: `note ${i}`,
  text: `hello ${i}\n`,
});

describe('mail transport: TLS required and verified, polls bounded', () => {
  let dir: string;
  let ca: TestCa;
  let secureWorld: MailWorld;
  let rogueWorld: MailWorld;
  let plainWorld: MailWorld;

  before(async () => {
    dir = tempDir('us-mail-tls');
    ca = await createTestCa(dir);
    secureWorld = await startMailWorld(['understudy', 'alice'], {
      tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
    });
    rogueWorld = await startMailWorld(['understudy', 'alice'], {
      tls: { cert: ca.rogueCert, key: ca.rogueKey, ca: ca.caCert },
    });
    plainWorld = await startMailWorld(['understudy', 'alice']);
  });
  after(async () => {
    await secureWorld?.close();
    await rogueWorld?.close();
    await plainWorld?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const imapOf = (world: MailWorld, extra: Partial<MailServerSettings> = {}) =>
    createImapReader({
      host: '127.0.0.1',
      port: world.imapPort,
      secure: false,
      user: 'understudy',
      password: world.passwordOf('understudy'),
      mailbox: 'INBOX',
      ...extra,
    });

  test('finding 10: by default SMTP and IMAP refuse a server that does not offer TLS', async () => {
    const smtp = createSmtpSender({ host: '127.0.0.1', port: plainWorld.smtpPort, secure: false }, 5000);
    await assert.rejects(smtp.send(note('alice@example.test')), { code: 'MAIL_FAILED' });
    smtp.close();
    assert.equal((await plainWorld.inbox('alice')).length, 0, 'nothing was sent in plaintext');
    const imap = imapOf(plainWorld);
    await assert.rejects(imap.fetchUnseen(), { code: 'MAIL_FAILED' });
    await imap.close();
  });

  test('finding 10: a server certificate not signed by the configured CA is refused', async () => {
    const caPem = fs.readFileSync(ca.caCert);
    const smtp = createSmtpSender(
      { host: '127.0.0.1', port: rogueWorld.smtpPort, secure: false, ca: caPem },
      5000,
    );
    await assert.rejects(smtp.send(note('alice@example.test')), { code: 'MAIL_FAILED' });
    smtp.close();
    const imap = imapOf(rogueWorld, { ca: caPem });
    await assert.rejects(imap.fetchUnseen(), { code: 'MAIL_FAILED' });
    await imap.close();
    // Without the test CA, the system CAs do not know the test CA's certificate either.
    const noCa = imapOf(secureWorld);
    await assert.rejects(noCa.fetchUnseen(), { code: 'MAIL_FAILED' });
    await noCa.close();
  });

  test('finding 10: with the test CA, STARTTLS (SMTP, IMAP) and implicit TLS (IMAPS) work; insecure is explicit', async () => {
    const caPem = fs.readFileSync(ca.caCert);
    const smtp = createSmtpSender(
      { host: '127.0.0.1', port: secureWorld.smtpPort, secure: false, ca: caPem },
      5000,
    );
    await smtp.send(note('understudy@example.test'));
    smtp.close();
    for (const reader of [
      imapOf(secureWorld, { ca: caPem }),
      imapOf(secureWorld, { ca: caPem, secure: true, port: secureWorld.imapsPort }),
    ]) {
      const messages = await reader.fetchUnseen();
      assert.equal(messages.length, 1);
      assert.match(messages[0]?.source?.toString() ?? '', /hello 0/);
      await reader.close();
    }
    // The explicit test-only switch talks plaintext to the plaintext server.
    const insecure = createSmtpSender(
      { host: '127.0.0.1', port: plainWorld.smtpPort, secure: false, insecure: true },
      5000,
    );
    await insecure.send(note('alice@example.test'));
    insecure.close();
    assert.equal((await plainWorld.inbox('alice')).length, 1);
  });

  test('finding 11: one IMAP poll reads at most maxMessages messages and never downloads one over the size cap', async () => {
    const caPem = fs.readFileSync(ca.caCert);
    const smtp = createSmtpSender(
      { host: '127.0.0.1', port: secureWorld.smtpPort, secure: false, ca: caPem },
      10_000,
    );
    await smtp.send({ ...note('alice@example.test'), text: 'x'.repeat(2 * 1024 * 1024) });
    for (let i = 1; i <= 30; i++) await smtp.send(note('alice@example.test', i));
    smtp.close();
    const reader = createImapReader({
      host: '127.0.0.1',
      port: secureWorld.imapPort,
      secure: false,
      ca: caPem,
      user: 'alice',
      password: secureWorld.passwordOf('alice'),
      mailbox: 'INBOX',
      maxMessages: 10,
      maxMessageBytes: 64 * 1024,
    });
    try {
      const first = await reader.fetchUnseen();
      assert.equal(first.length, 10, 'ten messages per poll');
      const big = first.find((m) => m.size > 1024 * 1024);
      assert.ok(big, 'the big message is in the first (oldest) batch');
      assert.equal(big.source, null, 'the big message was not downloaded');
      const downloaded = first.reduce((sum, m) => sum + (m.source?.length ?? 0), 0);
      assert.ok(downloaded < 10 * 64 * 1024, `downloaded ${downloaded} bytes`);
      await reader.markSeen(first.map((m) => m.uid));
      const second = await reader.fetchUnseen();
      assert.equal(second.length, 10, 'the rest waits for the next polls');
      assert.ok(second.every((m) => m.source !== null));
    } finally {
      await reader.close();
    }
    assert.ok(fs.existsSync(path.join(dir, 'ca.pem')));
  });
});
