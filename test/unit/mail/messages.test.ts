import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  composeNotification,
  computeApprovalCode,
  parseDecision,
  parseReply,
  signApprovalLink,
  verifyApprovalCode,
  verifyApprovalLink,
} from '../../../src/mail/index.ts';

const challenge = 'ab'.repeat(20);

void test('decisions parse into their canonical form', () => {
  assert.deepEqual(parseDecision('Approve all'), { kind: 'approve-all' });
  assert.deepEqual(parseDecision('approve-all'), { kind: 'approve-all' });
  assert.deepEqual(parseDecision('REJECT'), { kind: 'reject' });
  assert.deepEqual(parseDecision('approve: p2, p1,p2'), { kind: 'approve', patches: ['p1', 'p2'] });
  assert.throws(() => parseDecision('maybe later'), /not understood/);
});

void test('a code is bound to the challenge, the decision, the secret and the time', () => {
  const secret = randomBytes(32);
  const at = new Date('2026-11-25T12:00:00Z');
  const code = computeApprovalCode({ secret, challenge, decision: { kind: 'approve-all' }, at });
  const ok = (o: Partial<Parameters<typeof verifyApprovalCode>[0]>): boolean =>
    verifyApprovalCode({ secret, challenge, decision: { kind: 'approve-all' }, code, at, ...o });
  assert.equal(ok({}), true);
  assert.equal(ok({ at: new Date(at.getTime() + 29 * 60_000) }), true, 'valid for the window');
  assert.equal(ok({ at: new Date(at.getTime() + 32 * 60_000) }), false, 'too old');
  assert.equal(ok({ decision: { kind: 'reject' } }), false);
  assert.equal(ok({ challenge: 'cd'.repeat(20) }), false);
  assert.equal(ok({ secret: randomBytes(32) }), false);
});

void test('replies: quoted lines ignored, missing or malformed fields reported', async () => {
  const notification = composeNotification({
    from: 'u@x',
    to: 'a@x',
    adminName: 'a',
    patches: [{ name: 'p1', categories: ['security'], description: 'd', publishedAt: null, sourceFeed: 'f' }],
    challenge,
    expiresAt: 'soon',
  });
  const quoted = notification.text
    .split('\n')
    .map((l) => `> ${l}`)
    .join('\n');
  const opts = { senders: ['alice@example.test'] };
  const mail = (body: string): string =>
    `From: Alice <Alice@Example.test>\r\nTo: u@x\r\nSubject: Re: x\r\nMessage-ID: <1@x>\r\n\r\n${body}`;
  const good = await parseReply(
    mail(`Challenge: ${challenge}\nDecision: approve: p1\nCode: 12345678\n\n${quoted}`),
    opts,
  );
  assert.equal(good.from, 'alice@example.test');
  assert.deepEqual(good.approval, {
    challenge,
    decision: { kind: 'approve', patches: ['p1'] },
    code: '12345678',
  });
  const onlyQuoted = await parseReply(mail(`ok!\n\n${quoted}`), opts);
  assert.equal(onlyQuoted.approval, null, 'the quoted Challenge line does not count');
  assert.match(onlyQuoted.problem ?? '', /needs the lines/);
  assert.match(
    (await parseReply(mail(`Challenge: xyz\nDecision: approve all\nCode: 12345678`), opts)).problem ?? '',
    /40 hex/,
  );
  assert.match(
    (await parseReply(mail(`Challenge: ${challenge}\nDecision: approve all\nCode: 1234`), opts)).problem ??
      '',
    /8 digits/,
  );
  assert.match(
    (await parseReply(mail(`Challenge: ${challenge}\nDecision: sure\nCode: 12345678`), opts)).problem ?? '',
    /not understood/,
  );
  assert.equal(good.automatic, false);
  const vacation = await parseReply(
    `From: a@x\r\nAuto-Submitted: auto-replied\r\nSubject: away\r\n\r\nI am away`,
    { senders: ['a@x'] },
  );
  assert.equal(vacation.automatic, true, 'auto-replies are recognised (and never answered)');
  const garbage = await parseReply(Buffer.from([0, 1, 2, 255, 254, 10, 13]), opts);
  assert.equal(garbage.approval, null);
});

void test('approval links verify only with the right secret and before expiry', () => {
  const secret = randomBytes(32);
  const token = signApprovalLink(secret, {
    challenge,
    decision: { kind: 'approve', patches: ['b', 'a'] },
    admin: 'alice',
    expiresAt: 2_000,
  });
  const ok = verifyApprovalLink(secret, token, new Date(1_000));
  assert.ok(ok.ok && ok.claims.admin === 'alice' && ok.claims.decision.kind === 'approve');
  assert.deepEqual(verifyApprovalLink(randomBytes(32), token, new Date(1_000)), {
    ok: false,
    reason: 'bad-signature',
  });
  assert.deepEqual(verifyApprovalLink(secret, token, new Date(3_000)), { ok: false, reason: 'expired' });
  assert.deepEqual(verifyApprovalLink(secret, 'nonsense', new Date(1_000)), {
    ok: false,
    reason: 'malformed',
  });
});
