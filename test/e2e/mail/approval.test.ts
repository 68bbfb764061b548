// The whole Fig. 20 loop with real servers: a patch appears on an HTTP patch server, the daemon
// registers it and mails the administrators through SMTP; the mail is read back from dovecot
// (IMAP); the administrator computes the code with `understudy approve-code` and replies through
// SMTP; the daemon reads the reply over IMAP, authenticates it, sets apply-at-next-run and starts
// the patch run. Wrong, reused, foreign, expired codes and malformed mail are refused and
// answered; an unknown sender is refused and never answered. Both servers require TLS with a
// certificate from a CA the test makes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import type { ParsedMail } from 'mailparser';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { exec, redactedPaths, statePaths, waitFor } from '../../../src/core/index.ts';
import { openStore } from '../../../src/store/index.ts';
import { runDaemon } from '../../../src/api/index.ts';
import { openApp } from '../../../src/app/index.ts';
import { addFeed } from '../../../src/monitor/index.ts';
import { computeApprovalCode, issueChallenge } from '../../../src/mail/index.ts';
import { PatchServerDir, startHttpServer, tempDir } from '../monitor/fixtures.ts';
import { createTestCa } from '../../helpers/test-ca.ts';
import { startMailWorld } from './mail-servers.ts';
import { monitorSchemas, openMonitorStore } from '../../helpers/stores.ts';

const repo = path.resolve(import.meta.dirname, '../../..');

function challengeOf(mail: ParsedMail): string {
  const m = /^Challenge: ([0-9a-f]{40})$/m.exec(mail.text ?? '');
  assert.ok(m, `no challenge in: ${mail.text}`);
  return m[1] as string;
}

const t0 = Date.now();
const mark = (t: { diagnostic: (s: string) => void }, what: string): void =>
  t.diagnostic(`${Date.now() - t0} ms: ${what}`);

void test(
  'patch appears → mail → authenticated reply → apply at next run and patch run started',
  { timeout: 90_000 },
  async (t) => {
    const caDir = tempDir('us-aprv-ca');
    t.after(() => fs.rmSync(caDir, { recursive: true, force: true }));
    const ca = await createTestCa(caDir);
    const world = await startMailWorld(['understudy', 'alice', 'bob', 'mallory'], {
      tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
    });
    t.after(() => world.close());
    const served = tempDir('us-aprv');
    t.after(() => fs.rmSync(served, { recursive: true, force: true }));
    const patchServer = new PatchServerDir(served);
    const http = await startHttpServer(served);
    t.after(() => http.close());

    const stateDir = tempDir('us-aprv-state');
    t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    const secrets = { alice: randomBytes(32).toString('hex'), bob: randomBytes(32).toString('hex') };
    fs.writeFileSync(path.join(stateDir, 'alice.secret'), secrets.alice, { mode: 0o600 });
    const apiToken = randomBytes(24).toString('hex');
    const linkSecret = randomBytes(32).toString('hex');
    const configPath = path.join(stateDir, 'monitor.yaml');
    fs.writeFileSync(
      configPath,
      stringify({
        api: { listen: '127.0.0.1', port: 0, token: apiToken, publicUrl: 'http://127.0.0.1:1', linkSecret },
        mail: {
          from: `understudy@${world.domain}`,
          smtp: { host: '127.0.0.1', port: world.smtpPort, caFile: ca.caCert },
          imap: {
            host: '127.0.0.1',
            port: world.imapPort,
            caFile: ca.caCert,
            user: 'understudy',
            password: world.passwordOf('understudy'),
            pollSeconds: 0.3,
          },
        },
        administrators: [
          { name: 'alice', email: `alice@${world.domain}`, secretFile: 'alice.secret' },
          { name: 'bob', email: `Bob@${world.domain}`, secret: secrets.bob, categories: ['security'] },
        ],
        monitor: { tickMs: 100 },
      }),
    );
    {
      const { db } = openMonitorStore(stateDir);
      addFeed(db, {
        name: 'vendor',
        kind: 'patch-server',
        url: http.url,
        intervalSeconds: 1,
        options: { publicKey: patchServer.publicKeyBase64 },
      });
      db.close();
    }
    const runs: { lcs: string[]; patches: string[] }[] = [];
    const logLines: string[] = [];
    const logger = pino(
      { level: 'debug', redact: { paths: redactedPaths, censor: '[redacted]' } },
      new Writable({ write: (c: Buffer, _e, done) => done(void logLines.push(c.toString())) }),
    );
    const app = openApp(stateDir);
    const daemon = await runDaemon({
      manager: app,
      stateDir,
      configPath,
      logger,
      port: 0,
      managedLcs: { list: async () => ['lc1', 'lc2'], installedPackages: async () => new Map() },
      startPatchRun: async (request) => void runs.push(request),
    });
    t.after(async () => {
      await daemon.close();
      app.close();
    });

    // 1801–1805: a patch appears on the server; the administrators get a mail.
    const appeared = Date.now();
    patchServer.add(
      {
        name: 'openssl-fix',
        content: 'fix\n',
        categories: ['security'],
        description: 'Fixes CVE-2026-0001 in openssl',
      },
      {
        name: 'new-dashboard',
        content: 'feature\n',
        categories: ['feature'],
        description: 'Adds a dashboard',
      },
    );
    const aliceMail = await waitFor(async () => (await world.inbox('alice'))[0], {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    assert.ok(aliceMail, 'alice got the notification');
    const delayMs = Date.now() - appeared;
    t.diagnostic(`patch on server → mail in mailbox: ${delayMs} ms (poll interval 1 s)`);
    assert.match(aliceMail.text ?? '', /openssl-fix\s+\[security\]/);
    assert.match(aliceMail.text ?? '', /Fixes CVE-2026-0001 in openssl/);
    assert.match(aliceMail.text ?? '', /new-dashboard\s+\[feature\]/);
    const bobMail = await waitFor(async () => (await world.inbox('bob'))[0], {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    assert.ok(bobMail);
    assert.match(bobMail.text ?? '', /openssl-fix/);
    assert.doesNotMatch(bobMail.text ?? '', /new-dashboard/, 'bob only gets security patches');
    const aliceChallenge = challengeOf(aliceMail);
    const bobChallenge = challengeOf(bobMail);

    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: world.smtpPort,
      secure: false,
      requireTLS: true,
      tls: { ca: fs.readFileSync(ca.caCert) },
    });
    t.after(() => smtp.close());
    const reply = async (from: string, mail: ParsedMail | null, body: string): Promise<void> => {
      await smtp.sendMail({
        from: `${from}@${world.domain}`,
        to: `understudy@${world.domain}`,
        subject: `Re: ${mail?.subject ?? 'hello'}`,
        inReplyTo: mail?.messageId,
        text: `${body}\n\n${(mail?.text ?? '')
          .split('\n')
          .map((l) => `> ${l}`)
          .join('\n')}\n`,
      });
    };
    const answerTo = async (user: string, count: number): Promise<ParsedMail> => {
      const answers = await waitFor(
        async () => {
          const all = (await world.inbox(user)).filter((m) => /accepted|rejected/.test(m.subject ?? ''));
          return all.length >= count ? all : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      assert.ok(answers, `${user} got ${count} answer(s)`);
      return answers[count - 1] as ParsedMail;
    };

    mark(t, '1806–1809');
    // 1806–1809: alice approves with the code from the administrator's tool.
    const cli = await exec(
      [
        'node',
        '--import',
        'tsx',
        'src/cli/entry.ts',
        '--json',
        'approve-code',
        aliceChallenge,
        '--decision',
        'approve all',
        '--secret-file',
        path.join(stateDir, 'alice.secret'),
      ],
      { cwd: repo },
    );
    const aliceCode = (JSON.parse(cli.stdout) as { code: string }).code;
    assert.match(aliceCode, /^\d{8}$/);
    await reply(
      'alice',
      aliceMail,
      `Challenge: ${aliceChallenge}\nDecision: approve all\nCode: ${aliceCode}`,
    );
    const accepted = await answerTo('alice', 1);
    assert.match(accepted.subject ?? '', /accepted/);
    const { db, catalogue } = openMonitorStore(stateDir);
    t.after(() => db.close());
    for (const lc of ['lc1', 'lc2'])
      assert.deepEqual(
        catalogue
          .patchesForNextRun(lc)
          .map((p) => p.name)
          .sort(),
        ['new-dashboard', 'openssl-fix'],
      );
    assert.deepEqual(runs, [
      {
        lcs: ['lc1', 'lc2'],
        patches: ['new-dashboard', 'openssl-fix'],
        reason: 'approved by alice via mail',
      },
    ]);

    mark(t, 'The same reply ag');
    // The same reply again: the code is accepted once.
    await reply(
      'alice',
      aliceMail,
      `Challenge: ${aliceChallenge}\nDecision: approve all\nCode: ${aliceCode}`,
    );
    assert.match((await answerTo('alice', 2)).text ?? '', /already been used/);

    mark(t, 'Bob: a wrong code');
    // Bob: a wrong code, then alice's challenge (foreign), then malformed.
    await reply('bob', bobMail, `Challenge: ${bobChallenge}\nDecision: approve all\nCode: 12345678`);
    assert.match((await answerTo('bob', 1)).text ?? '', /code is wrong/);
    const foreignCode = computeApprovalCode({
      secret: Buffer.from(secrets.bob, 'hex'),
      challenge: aliceChallenge,
      decision: { kind: 'approve-all' },
    });
    await reply('bob', bobMail, `Challenge: ${aliceChallenge}\nDecision: approve all\nCode: ${foreignCode}`);
    assert.match((await answerTo('bob', 2)).text ?? '', /issued to another administrator/);
    await reply('bob', null, 'please approve everything, thanks');
    assert.match((await answerTo('bob', 3)).text ?? '', /needs the lines/);
    // A code computed for "reject" does not approve.
    const rejectCode = computeApprovalCode({
      secret: Buffer.from(secrets.bob, 'hex'),
      challenge: bobChallenge,
      decision: { kind: 'reject' },
    });
    await reply(
      'bob',
      bobMail,
      `Challenge: ${bobChallenge}\nDecision: approve: openssl-fix\nCode: ${rejectCode}`,
    );
    assert.match((await answerTo('bob', 4)).text ?? '', /code is wrong/);

    mark(t, 'An expired challe');
    // An expired challenge.
    const expired = issueChallenge(db, {
      admin: 'bob',
      patches: ['openssl-fix'],
      ttlMs: -1000,
      now: new Date(),
    });
    const expiredCode = computeApprovalCode({
      secret: Buffer.from(secrets.bob, 'hex'),
      challenge: expired.challenge,
      decision: { kind: 'approve-all' },
    });
    await reply('bob', null, `Challenge: ${expired.challenge}\nDecision: approve all\nCode: ${expiredCode}`);
    assert.match((await answerTo('bob', 5)).text ?? '', /expired/);

    mark(t, 'An unknown sender');
    // An unknown sender with a perfectly formed reply.
    await reply(
      'mallory',
      aliceMail,
      `Challenge: ${bobChallenge}\nDecision: approve all\nCode: ${aliceCode}`,
    );
    assert.equal(runs.length, 1, 'no refused reply started a patch run');
    // Finding 16 (backscatter): the refusal is recorded, and nothing is sent back to the sender.
    const store = openStore(statePaths(stateDir).database, monitorSchemas);
    t.after(() => store.close());
    const refusedMallory = await waitFor(
      () =>
        store.prepare("SELECT 1 FROM processed_messages WHERE reason = 'unknown-sender'").get() as unknown,
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.ok(refusedMallory, "mallory's reply was processed");
    await new Promise((resolve) => setTimeout(resolve, 1500)); // an answer would have been sent by now
    assert.deepEqual(
      (await world.inbox('mallory')).map((m) => m.subject),
      [],
      'finding 16: no answer to an unknown sender',
    );

    // The processed-messages log records each refusal with its reason.
    const reasons = (
      openStore(statePaths(stateDir).database, monitorSchemas)
        .prepare("SELECT reason FROM processed_messages WHERE outcome = 'rejected' ORDER BY processed_at")
        .all() as { reason: string }[]
    ).map((r) => r.reason);
    assert.deepEqual(
      reasons.sort(),
      ['expired', 'foreign', 'malformed', 'reused', 'unknown-sender', 'wrong-code', 'wrong-code'].sort(),
    );

    mark(t, 'The API: status');
    // The API: status needs the token.
    const denied = await daemon.app.inject({ method: 'GET', url: '/v1/monitor/status' });
    assert.equal(denied.statusCode, 401);
    const status = await daemon.app.inject({
      method: 'GET',
      url: '/v1/monitor/status',
      headers: { authorization: `Bearer ${apiToken}` },
    });
    assert.equal(status.statusCode, 200);
    assert.equal(
      (status.json() as { feeds: { name: string; registeredTotal: number }[] }).feeds[0]?.registeredTotal,
      2,
    );

    mark(t, 'Graceful shutdown');
    // Graceful shutdown.
    await daemon.close();
    await daemon.closed;
    const log = logLines.join('');
    assert.match(log, /"event":"approval.rejected"/);
    assert.match(log, /"event":"daemon.stopped"/);
    for (const secret of [secrets.alice, secrets.bob, apiToken, linkSecret, world.passwordOf('understudy')])
      assert.ok(!log.includes(secret), 'no secret in the log');
  },
);
