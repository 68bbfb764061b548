/**
 * Fault: the mail server is down when an administrator's approval arrives. Real dovecot and SMTP
 * server (TLS, test CA): with IMAP down the reply waits in the mailbox and nothing changes; with SMTP
 * down the approval still counts (the answer cannot be sent, which is logged); the approval starts its
 * patch run exactly once, and nothing is lost.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import nodemailer from 'nodemailer';
import { silentLogger, type Logger } from '../../../src/core/index.ts';
import {
  computeApprovalCode,
  createImapReader,
  createSmtpSender,
  findChallenge,
  issueChallenge,
} from '../../../src/mail/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { createTestCa } from '../../helpers/test-ca.ts';
import { tempDir } from '../monitor/fixtures.ts';
import { startMailWorld } from './mail-servers.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

test(
  'fault: the mail server is down when the approval arrives: the approval waits, then counts once',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir('us-mailfault');
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const ca = await createTestCa(dir);
    const world = await startMailWorld(['understudy', 'alice'], {
      tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
    });
    t.after(() => world.close());
    const caPem = fs.readFileSync(ca.caCert);
    const secret = randomBytes(32);
    const config = resolveMonitorConfig(
      {
        mail: {
          from: 'understudy@example.test',
          smtp: { host: '127.0.0.1', port: world.smtpPort, caFile: ca.caCert },
          imap: {
            host: '127.0.0.1',
            port: world.imapPort,
            caFile: ca.caCert,
            user: 'understudy',
            password: world.passwordOf('understudy'),
          },
        },
        administrators: [{ name: 'alice', email: 'alice@example.test', secret: secret.toString('hex') }],
      },
      dir,
    );
    const { db, catalogue } = openMonitorStore(dir);
    t.after(() => db.close());
    const patchFile = path.join(dir, 'fix.diff');
    fs.writeFileSync(patchFile, 'fix\n');
    await catalogue.registerPatch({
      file: patchFile,
      name: 'fix',
      categories: ['security'],
      format: 'diff',
      sha256: createHash('sha256').update('fix\n').digest('hex'),
    });
    const warnings: { event?: string }[] = [];
    const logger = {
      ...silentLogger,
      warn: (o: { event?: string }) => void warnings.push(o),
    } as unknown as Logger;
    const runs: { lcs: string[]; patches: string[] }[] = [];
    const monitor = createMonitor({
      db,
      catalogue,
      config,
      stateDir: dir,
      fetcher: realFetcher,
      managedLcs: { list: async () => ['lc1'], installedPackages: async () => new Map() },
      mailer: createSmtpSender(config.mail?.smtp ?? { host: '', port: 0, secure: false }, 5000),
      mailbox: createImapReader(
        { ...(config.mail?.imap ?? { host: '', port: 0, secure: false, mailbox: 'INBOX' }) },
        5000,
      ),
      startPatchRun: async (request) => void runs.push(request),
      logger,
    });
    t.after(() => monitor.stop());

    const { challenge } = issueChallenge(db, {
      admin: 'alice',
      patches: ['fix'],
      ttlMs: 3600_000,
      now: new Date(),
    });
    const code = computeApprovalCode({ secret, challenge, decision: { kind: 'approve-all' } });
    const alice = nodemailer.createTransport({
      host: '127.0.0.1',
      port: world.smtpPort,
      secure: false,
      requireTLS: true,
      tls: { ca: caPem },
    });
    t.after(() => alice.close());

    // The reply reaches the mailbox, then IMAP goes down before the daemon reads it.
    await alice.sendMail({
      from: 'alice@example.test',
      to: 'understudy@example.test',
      subject: 'Re: patches',
      text: `Challenge: ${challenge}\nDecision: approve all\nCode: ${code}\n`,
    });
    await world.stopImap();
    await assert.rejects(monitor.processReplies(), { code: 'MAIL_FAILED' });
    assert.equal(runs.length, 0);
    assert.equal(findChallenge(db, challenge)?.state, 'open', 'nothing changed while IMAP was down');

    // IMAP is back but SMTP is down: the approval counts; only the answer fails.
    await world.stopSmtp();
    await world.startImap();
    const verdicts = await monitor.processReplies();
    assert.equal(verdicts.length, 1);
    assert.equal(verdicts[0]?.ok, true);
    assert.deepEqual(runs, [{ lcs: ['lc1'], patches: ['fix'], reason: 'approved by alice via mail' }]);
    assert.equal(findChallenge(db, challenge)?.state, 'used');
    assert.ok(
      warnings.some((w) => w.event === 'mail.answer_failed'),
      'the failed answer is logged',
    );
    assert.deepEqual(
      catalogue.patchesForNextRun('lc1').map((p) => p.name),
      ['fix'],
    );

    // Everything back up: the same reply is never applied twice.
    await world.startSmtp();
    assert.deepEqual(await monitor.processReplies(), []);
    assert.equal(runs.length, 1, 'exactly one patch run');
  },
);
