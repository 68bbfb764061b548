/**
 * The mail side of the fleet's approval tests: real SMTP and dovecot IMAP with TLS from a test CA of
 * its own (in the fleet fixture's directory), the SMTP server authenticating incoming mail like an MX
 * (DKIM and DMARC of `domain` verified, Authentication-Results of its own as `authServId`), a DKIM key
 * published for selector s1, and an SMTP client to send the administrators' replies. All of it is
 * closed after the test, even when it fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import { createTestCa, type TestCa } from '../../helpers/test-ca.ts';
import type { FleetDb } from '../../helpers/fleet-fixture.ts';
import { startMailWorld, type MailWorld } from '../mail/mail-servers.ts';

export const domain = 'example.test';
export const authServId = 'mx.example.test';

export interface DkimKey {
  /** PKCS#8 PEM. */
  privateKey: string;
  /** The DNS TXT record of the public key, in 255-byte strings. */
  txt: string[];
}

/** A fresh RSA key pair as a DKIM key. */
export function dkimKey(): DkimKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const record = `v=DKIM1; k=rsa; p=${p}`;
  const txt: string[] = [];
  for (let i = 0; i < record.length; i += 255) txt.push(record.slice(i, i + 255));
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), txt };
}

export interface ApprovalMail {
  ca: TestCa;
  /** The domain's DKIM key (selector s1), the one its DNS publishes. */
  key: DkimKey;
  world: MailWorld;
  /** Sends to the SMTP server over STARTTLS (required), trusting the test CA. */
  smtp: Transporter;
}

/** Starts the mail servers with a mailbox for each of `users`. */
export async function startApprovalMail(
  t: { after: (fn: () => unknown) => void },
  fx: FleetDb,
  users: string[],
): Promise<ApprovalMail> {
  const caDir = path.join(fx.dir, 'mail-ca');
  fs.mkdirSync(caDir);
  const ca = await createTestCa(caDir);
  const key = dkimKey();
  const world = await startMailWorld(users, {
    domain,
    tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
    authenticate: {
      authServId,
      dns: new Map([
        [`s1._domainkey.${domain}`, [key.txt]],
        [`_dmarc.${domain}`, [['v=DMARC1; p=reject']]],
      ]),
    },
  });
  t.after(() => world.close());
  const smtp = nodemailer.createTransport({
    host: '127.0.0.1',
    port: world.smtpPort,
    secure: false,
    requireTLS: true,
    tls: { ca: fs.readFileSync(ca.caCert) },
  });
  t.after(() => smtp.close());
  return { ca, key, world, smtp };
}
