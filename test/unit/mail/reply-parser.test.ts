/**
 * The reply parser faces mail from anyone: it must finish in bounded time whatever the body, refuse a
 * stranger before reading the body, refuse what is too big unread, and (when the IMAP server adds
 * Authentication-Results) refuse a reply whose sender is not authenticated.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseReply, type ParseReplyOptions } from '../../../src/mail/index.ts';

const challenge = 'ab'.repeat(20);
const admin = 'alice@example.test';
const options: ParseReplyOptions = { senders: [admin] };
/** Generous for a shared 2-core machine; the quadratic parser took seconds on these inputs. */
const BOUND_MS = 400;

const mail = (body: string, headers = `From: Alice <${admin}>\r\n`): string =>
  `${headers}To: u@x\r\nSubject: Re: x\r\nMessage-ID: <1@x>\r\n\r\n${body}`;

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

const crafted = [
  `Challenge: a${' '.repeat(90_000)}b`,
  `Decision: approve${' \t'.repeat(45_000)}x`,
  `Code:${' '.repeat(90_000)}\u00a0x`,
  `${'Code: '.repeat(15_000)}x`,
  `${':'.repeat(90_000)}`,
];

test('finding 1: a 90 KB crafted whitespace reply from an administrator is parsed in bounded time', async () => {
  for (const body of crafted) {
    const { result, ms } = await timed(() => parseReply(mail(body), options));
    assert.ok(ms < BOUND_MS, `parsing took ${Math.round(ms)} ms`);
    assert.equal(result.approval, null);
  }
});

test("finding 1: a stranger's reply is refused on its headers, before its body is parsed", async () => {
  for (const body of [...crafted, 'x'.repeat(5_000_000)]) {
    const { result, ms } = await timed(() =>
      parseReply(mail(body, 'From: Mallory <mallory@evil.test>\r\n'), options),
    );
    assert.ok(ms < BOUND_MS, `took ${Math.round(ms)} ms`);
    assert.equal(result.rejected, 'unknown-sender');
    assert.equal(result.from, 'mallory@evil.test');
    assert.equal(result.approval, null);
  }
});

test('finding 1: a reply over the size cap is refused without parsing it', async () => {
  const body = `Challenge: ${challenge}\nDecision: approve all\nCode: 12345678\n${'x'.repeat(300_000)}`;
  const { result } = await timed(() => parseReply(mail(body), { ...options, maxBytes: 128 * 1024 }));
  assert.equal(result.rejected, 'too-large');
  assert.equal(result.approval, null);
});

test('finding 1: with a trusted authserv-id, only a DKIM/DMARC-authenticated reply is read', async () => {
  const body = `Challenge: ${challenge}\nDecision: approve all\nCode: 12345678\n`;
  const trusted = { ...options, trustedAuthServId: 'mx.example.test' };
  const withResults = (results: string[]): string =>
    mail(body, `${results.map((r) => `Authentication-Results: ${r}\r\n`).join('')}From: ${admin}\r\n`);
  const cases: [string[], string | null][] = [
    [[], 'unauthenticated'],
    [['mx.example.test; dkim=fail header.d=example.test'], 'unauthenticated'],
    [['mx.example.test; dkim=pass header.d=evil.test'], 'unauthenticated'],
    // Only the trusted server's own results count, not ones the sender wrote.
    [['evil.test; dkim=pass header.d=example.test'], 'unauthenticated'],
    [['mx.example.test; dkim=pass (good signature) header.d=example.test header.s=s1'], null],
    [['mx.example.test 1; spf=pass; dmarc=pass header.from=example.test'], null],
    [['mx.example.test; arc=pass; dmarc=pass (arc override) header.from=Example.Test'], null],
  ];
  for (const [results, expected] of cases) {
    const parsed = await parseReply(withResults(results), trusted);
    assert.equal(parsed.rejected, expected, results.join(' | ') || '(none)');
    if (expected === null) assert.ok(parsed.approval);
  }
});

test('finding 1: property: any body, random or adversarial, parses in bounded time and never throws', async () => {
  const piece = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constantFrom(
      'Challenge:',
      'Decision:',
      'Code:',
      '>',
      ':',
      '\r\n',
      '\n',
      ' ',
      '\t',
      '=?utf-8?',
      '<',
      '--',
    ),
    fc.nat({ max: 20_000 }).map((n) => ' '.repeat(n)),
    fc.nat({ max: 5_000 }).map((n) => ': '.repeat(n)),
    fc.nat({ max: 2_000 }).map((n) => '<a>'.repeat(n)),
    // A field line with a long run of whitespace inside its value: what backtracking patterns choke on.
    fc
      .tuple(
        fc.constantFrom('Challenge:', 'Decision:', 'Code:', ' code :'),
        fc.string({ maxLength: 3 }),
        fc.integer({ min: 10_000, max: 60_000 }),
        fc.constantFrom('x', '\u00a0y', '\t', ''),
      )
      .map(([name, a, n, b]) => `\n${name} ${a}${' '.repeat(n)}${b}\n`),
  );
  const body = fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(''));
  const headers = fc.constantFrom(
    `From: ${admin}\r\n`,
    `From: ${admin}\r\nContent-Type: text/html\r\n`,
    `From: ${admin}\r\nContent-Type: multipart/mixed; boundary=--\r\n`,
    `From: ${admin}\r\nContent-Transfer-Encoding: quoted-printable\r\n`,
    `From: ${admin}\r\nContent-Transfer-Encoding: base64\r\n`,
    'From: someone@else.test\r\n',
  );
  await fc.assert(
    fc.asyncProperty(headers, body, async (h, b) => {
      const { result, ms } = await timed(() => parseReply(mail(b, h), options));
      assert.ok(ms < BOUND_MS, `took ${Math.round(ms)} ms`);
      assert.equal(typeof result.from, 'string');
    }),
    { numRuns: 150, interruptAfterTimeLimit: 20_000 },
  );
});
