/**
 * `understudy control run --mail-config`: the scheduler as a child process asks for and reads a
 * rollout's approval by mail from the servers of its monitor.yaml-format file. Real SMTP and dovecot
 * IMAP with TLS from the test's CA (the SMTP server verifies DKIM and DMARC like an MX and adds its
 * own Authentication-Results), PostgreSQL 15 with TLS, two agents with the fake host runner.
 *
 * The rollout made with requireApproval waits; alice gets her challenge by mail from the process; an
 * unsigned reply with the right code is refused `unauthenticated` (the file's trustedAuthServId is
 * in force); her signed reply starts the rollout, which completes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { waitFor } from '../../../src/core/index.ts';
import { createRollout, getRollout, syncInventory } from '../../../src/fleet/index.ts';
import {
  approvalCodeFromCli,
  createFakeAgents,
  spawnCliDaemon,
  startFleetDb,
  writeControlDir,
} from '../../helpers/fleet-fixture.ts';
import { authServId, domain, startApprovalMail } from './approval-mail.ts';

test('control run --mail-config mails the challenge and reads the authenticated approval', async (t) => {
  const fx = await startFleetDb(t);
  const { ca, key, world, smtp } = await startApprovalMail(t, fx, ['understudy', 'alice']);
  const agents = await createFakeAgents(fx, { hosts: ['mh1', 'mh2'], pollMs: 200 });
  for (const a of agents) a.start();

  const controlDir = writeControlDir(fx);
  const secret = randomBytes(32).toString('hex');
  const secretFile = path.join(controlDir, 'alice.secret');
  fs.writeFileSync(secretFile, secret, { mode: 0o600 });
  const passwordFile = path.join(controlDir, 'imap.password');
  fs.writeFileSync(passwordFile, world.passwordOf('understudy'), { mode: 0o600 });
  const mailConfig = path.join(controlDir, 'mail.yaml');
  fs.writeFileSync(
    mailConfig,
    [
      'mail:',
      `  from: understudy@${domain}`,
      '  smtp:',
      '    host: 127.0.0.1',
      `    port: ${world.smtpPort}`,
      `    caFile: ${ca.caCert}`,
      '  imap:',
      '    host: 127.0.0.1',
      `    port: ${world.imapPort}`,
      `    caFile: ${ca.caCert}`,
      '    user: understudy',
      `    passwordFile: ${passwordFile}`,
      '    pollSeconds: 0.3',
      `    trustedAuthServId: ${authServId}`,
      'administrators:',
      '  - name: alice',
      `    email: alice@${domain}`,
      `    secretFile: ${secretFile}`,
      '',
    ].join('\n'),
  );
  const log: string[] = [];
  spawnCliDaemon(fx, ['control', 'run', '--dir', controlDir, '--tick', '300', '--mail-config', mailConfig], {
    log,
  });

  await syncInventory(fx.db);
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
  const mail = await waitFor(
    async () => (await world.inbox('alice')).find((m) => /awaits approval/.test(m.subject ?? '')),
    { timeoutMs: 60_000, intervalMs: 300 },
  );
  assert.ok(mail, `alice got her challenge from control run\n${log.join('')}`);
  assert.match(log.join(''), new RegExp(`rollout approvals by mail from understudy@${domain}`));
  const challenge = /^Challenge: ([0-9a-f]{40})$/m.exec(mail.text ?? '')?.[1];
  assert.ok(challenge, `a challenge in: ${mail.text}`);
  const code = await approvalCodeFromCli(challenge, 'approve all', secretFile);
  const reply = (signed: boolean) =>
    smtp.sendMail({
      from: `alice@${domain}`,
      to: `understudy@${domain}`,
      subject: 'Re: rollout approval',
      text: `Challenge: ${challenge}\nDecision: approve all\nCode: ${code}\n`,
      ...(signed
        ? {
            dkim: { domainName: domain, keySelector: 's1', privateKey: key.privateKey },
          }
        : {}),
    });

  // Unsigned: refused, the rollout still waits.
  await reply(false);
  const refused = await waitFor(
    async () =>
      (
        await fx.db.query<{ reason: string }>(
          `SELECT detail->>'reason' AS reason FROM fleet.audit WHERE action = 'rollout.approve' AND outcome = 'refused'`,
        )
      ).rows[0],
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  assert.equal(refused?.reason, 'unauthenticated', log.join(''));
  assert.equal((await getRollout(fx.db, rollout.id)).state, 'awaiting-approval');

  // Signed: approved by the process, dispatched and completed.
  await reply(true);
  const done = await waitFor(
    async () => {
      const r = await getRollout(fx.db, rollout.id);
      return r.state === 'completed' || r.state === 'halted' ? r : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 300 },
  );
  assert.equal(done?.state, 'completed', log.join(''));
  const work = await fx.db.query<{ state: string }>(`SELECT state FROM fleet.work WHERE rollout_id = $1`, [
    rollout.id,
  ]);
  assert.deepEqual(
    work.rows.map((w) => w.state),
    ['succeeded', 'succeeded', 'succeeded', 'succeeded'],
  );
});
