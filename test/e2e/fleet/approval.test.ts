/**
 * Per-rollout mail approval with real servers: PostgreSQL 15 with TLS (the control plane), an SMTP
 * server that authenticates incoming mail like a real MX (DKIM and DMARC verified with mailauth,
 * Authentication-Results of its own, any such header already in the message removed) and delivers
 * into dovecot (IMAP), both with TLS from the test's CA, and two agents on the control plane's
 * PostgreSQL (fake host runner: the approval gates dispatch, which is what is under test).
 *
 * A rollout made with requireApproval dispatches nothing, and cannot be resumed into running, until
 * an administrator's authenticated reply carries the code for its challenge. A reply with a forged
 * From (unsigned, with a forged Authentication-Results header), one signed with another key, a wrong
 * code and another administrator's challenge are refused and audited, and leave the challenge open.
 * Then alice's reply, with the code from `understudy approve-code`, starts it and it completes; the
 * same approval sent again is refused. For a second rollout, bob's lost challenge is replaced by a new
 * one (mailed at the next round; the lost one's code is refused), and his rejection with the new one
 * stops it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import type { ParsedMail } from 'mailparser';
import { sleep, waitFor } from '../../../src/core/index.ts';
import { createImapReader, createSmtpSender } from '../../../src/mail/index.ts';
import {
  commandRollout,
  createRollout,
  getRollout,
  reissueChallenge,
  startControlWorker,
  startRolloutApprovals,
  syncInventory,
} from '../../../src/fleet/index.ts';
import {
  approvalCodeFromCli,
  createFakeAgents,
  startFleetDb,
  type FleetDb,
} from '../../helpers/fleet-fixture.ts';
import { authServId, dkimKey, domain, startApprovalMail } from './approval-mail.ts';

const challengeOf = (mail: ParsedMail): string => {
  const m = /^Challenge: ([0-9a-f]{40})$/m.exec(mail.text ?? '');
  assert.ok(m, `no challenge in: ${mail.text}`);
  return m[1] as string;
};

async function workCount(fx: FleetDb, rolloutId: number): Promise<number> {
  const r = await fx.db.query<{ n: string }>('SELECT count(*) AS n FROM fleet.work WHERE rollout_id = $1', [
    rolloutId,
  ]);
  return Number(r.rows[0]?.n);
}

test('a rollout waits for an authenticated mail approval of its patch set; forged and wrong replies are refused and audited', async (t) => {
  const fx = await startFleetDb(t);
  const { ca, key, world, smtp } = await startApprovalMail(t, fx, ['understudy', 'alice', 'bob']);

  // Two hosts with two LCs each, all pending the same security patch.
  const agents = await createFakeAgents(fx, { hosts: ['ha', 'hb'], pollMs: 150 });
  await syncInventory(fx.db);
  const worker = await startControlWorker({ db: fx.db, tickMs: 200, pollIntervalMs: 200 });
  const secrets = { alice: randomBytes(32), bob: randomBytes(32) };
  const caPem = fs.readFileSync(ca.caCert);
  const logLines: string[] = [];
  const approvals = startRolloutApprovals({
    db: fx.db,
    admins: [
      { name: 'alice', email: `alice@${domain}`, secret: secrets.alice },
      { name: 'bob', email: `bob@${domain}`, secret: secrets.bob },
    ],
    from: `understudy@${domain}`,
    mailer: createSmtpSender({ host: '127.0.0.1', port: world.smtpPort, secure: false, ca: caPem }),
    mailbox: createImapReader({
      host: '127.0.0.1',
      port: world.imapPort,
      secure: false,
      ca: caPem,
      user: 'understudy',
      password: world.passwordOf('understudy'),
      mailbox: 'INBOX',
    }),
    trustedAuthServId: authServId,
    pollMs: 300,
    onDecided: (id) => worker.kick(id),
    logger: pino(new Writable({ write: (c: Buffer, _e, done) => done(void logLines.push(c.toString())) })),
  });
  fx.defer(async () => {
    await approvals.stop();
    await worker.stop();
  });
  for (const a of agents) a.start();

  const rollout = await createRollout(
    fx.db,
    {
      name: 'openssl',
      patches: { securityOnly: true },
      canary: 1,
      maxConcurrency: 2,
      maxErrors: 0,
      watchSeconds: 0.5,
      requireApproval: true,
    },
    new Date(),
  );
  assert.equal(rollout.state, 'awaiting-approval');
  assert.deepEqual(rollout.patchSet, ['openssl-3.0.15']);

  // Each administrator gets a challenge for this rollout and its exact patch set.
  const mailOf = async (user: string, n = 1): Promise<ParsedMail> => {
    const mails = await waitFor(
      async () => {
        const all = (await world.inbox(user)).filter((m) => /awaits approval/.test(m.subject ?? ''));
        return all.length >= n ? all : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    assert.ok(mails, `${user} got ${n} approval request(s)`);
    return mails[n - 1] as ParsedMail;
  };
  const aliceMail = await mailOf('alice');
  const bobMail = await mailOf('bob');
  assert.match(aliceMail.text ?? '', /\* openssl-3\.0\.15/);
  assert.match(aliceMail.text ?? '', /4 LCs in 3 waves/);
  const aliceChallenge = challengeOf(aliceMail);
  const bobChallenge = challengeOf(bobMail);
  assert.notEqual(aliceChallenge, bobChallenge);

  // Waiting for approval: nothing is dispatched, even when ticked, and resume does not bypass it.
  await worker.kick(rollout.id);
  await sleep(1500);
  assert.equal(await workCount(fx, rollout.id), 0);
  await assert.rejects(commandRollout(fx.db, rollout.id, 'resume', new Date()), {
    code: 'FLEET_ROLLOUT_STATE',
  });

  const code = async (challenge: string, decision: string, secret: Buffer): Promise<string> => {
    const file = path.join(fx.dir, `secret-${challenge.slice(0, 6)}`);
    fs.writeFileSync(file, secret.toString('hex'), { mode: 0o600 });
    return approvalCodeFromCli(challenge, decision, file);
  };
  const reply = async (o: {
    from: string;
    body: string;
    dkim?: { privateKey: string } | null;
    headers?: Record<string, string>;
  }): Promise<void> => {
    await smtp.sendMail({
      from: `${o.from}@${domain}`,
      to: `understudy@${domain}`,
      subject: 'Re: rollout approval',
      text: `${o.body}\n`,
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.dkim ? { dkim: { domainName: domain, keySelector: 's1', privateKey: o.dkim.privateKey } } : {}),
    });
  };
  const lines = (challenge: string, decision: string, c: string): string =>
    `Challenge: ${challenge}\nDecision: ${decision}\nCode: ${c}`;
  const refusals = async (n: number) => {
    const rows = await waitFor(
      async () => {
        const r = await fx.db.query<{ actor: string; reason: string }>(
          `SELECT actor, detail->>'reason' AS reason FROM fleet.audit
           WHERE action = 'rollout.approve' AND outcome = 'refused' ORDER BY id`,
        );
        return r.rows.length >= n ? r.rows : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    assert.ok(rows, `${n} refusals audited`);
    return rows;
  };

  const aliceCode = await code(aliceChallenge, 'approve all', secrets.alice);
  // 1. The right code (as if intercepted) under a forged From: not signed, with a forged
  //    Authentication-Results header claiming the receiving server's id.
  await reply({
    from: 'alice',
    body: lines(aliceChallenge, 'approve all', aliceCode),
    headers: {
      'Authentication-Results': `${authServId}; dkim=pass header.d=${domain}; dmarc=pass header.from=${domain}`,
    },
  });
  // 2. The same, signed with a key that is not the domain's.
  await reply({ from: 'alice', body: lines(aliceChallenge, 'approve all', aliceCode), dkim: dkimKey() });
  // 3. Authenticated alice, wrong code.
  await reply({ from: 'alice', body: lines(aliceChallenge, 'approve all', '12345678'), dkim: key });
  // 4. Authenticated bob with alice's challenge (and bob's own code for it).
  await reply({
    from: 'bob',
    body: lines(aliceChallenge, 'approve all', await code(aliceChallenge, 'approve all', secrets.bob)),
    dkim: key,
  });
  const refused = await refusals(4);
  assert.deepEqual(
    refused.map((r) => `${r.actor}:${r.reason}`),
    [
      `alice@${domain}:unauthenticated`,
      `alice@${domain}:unauthenticated`,
      `alice@${domain}:wrong-code`,
      `bob@${domain}:foreign`,
    ],
  );
  assert.ok(
    logLines.some((l) => l.includes('"fleet.approval.refused"') && l.includes('"unauthenticated"')),
    'the refusal is logged',
  );
  assert.equal((await getRollout(fx.db, rollout.id)).state, 'awaiting-approval');
  assert.equal(await workCount(fx, rollout.id), 0, 'nothing dispatched on refused replies');

  // Alice's authenticated reply with the code starts the rollout; it runs to completion.
  await reply({ from: 'alice', body: lines(aliceChallenge, 'approve all', aliceCode), dkim: key });
  const done = await waitFor(
    async () => {
      const r = await getRollout(fx.db, rollout.id);
      return r.state === 'completed' || r.state === 'halted' ? r : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  assert.equal(done?.state, 'completed');
  const work = await fx.db.query<{ state: string; patches: string[] }>(
    `SELECT state, patches FROM fleet.work WHERE rollout_id = $1 ORDER BY id`,
    [rollout.id],
  );
  assert.deepEqual(
    work.rows.map((w) => `${w.state}:${w.patches.join(',')}`),
    Array(4).fill('succeeded:openssl-3.0.15'),
  );
  const accepted = await fx.db.query<{ actor: string; rollout: string }>(
    `SELECT actor, detail->>'rolloutId' AS rollout FROM fleet.audit WHERE action = 'rollout.approve' AND outcome = 'allowed'`,
  );
  assert.deepEqual(accepted.rows, [{ actor: 'alice', rollout: String(rollout.id) }]);
  const challenges = await fx.db.query<{ admin: string; state: string; decision: string }>(
    `SELECT admin, state, decision FROM fleet.rollout_challenges WHERE rollout_id = $1 ORDER BY admin`,
    [rollout.id],
  );
  assert.deepEqual(challenges.rows, [
    { admin: 'alice', state: 'used', decision: 'approve-all' },
    { admin: 'bob', state: 'used', decision: 'decided by alice' },
  ]);

  // The same approval again (a new message): refused, the challenge was used.
  await reply({ from: 'alice', body: lines(aliceChallenge, 'approve all', aliceCode), dkim: key });
  assert.equal((await refusals(5))[4]?.reason, 'reused');

  // A second rollout, rejected by bob: stopped, nothing dispatched.
  const second = await createRollout(
    fx.db,
    { name: 'openssl again', patches: { securityOnly: true }, requireApproval: true, watchSeconds: 0 },
    new Date(),
  );
  const bobLost = challengeOf(await mailOf('bob', 2));
  // Bob's mail is lost: a new challenge is issued; it is mailed at the approvals' next round and
  // the lost one's code is refused from then on.
  const reissued = await reissueChallenge(fx.db, { rolloutId: second.id, admin: 'bob' });
  assert.equal(reissued.replaced, 1);
  const bobSecond = challengeOf(await mailOf('bob', 3));
  assert.equal(bobSecond, reissued.challenge);
  await reply({
    from: 'bob',
    body: lines(bobLost, 'reject', await code(bobLost, 'reject', secrets.bob)),
    dkim: key,
  });
  assert.equal((await refusals(6))[5]?.reason, 'replaced');
  assert.equal((await getRollout(fx.db, second.id)).state, 'awaiting-approval');
  await reply({
    from: 'bob',
    body: lines(bobSecond, 'reject', await code(bobSecond, 'reject', secrets.bob)),
    dkim: key,
  });
  const stopped = await waitFor(
    async () => {
      const r = await getRollout(fx.db, second.id);
      return r.state === 'stopped' ? r : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  assert.equal(stopped?.reason, 'rejected by bob by mail');
  await sleep(1000);
  assert.equal(await workCount(fx, second.id), 0);
});
