/**
 * The fuzz targets of `npm run fuzz` (see fuzz.ts): for each parser that reads what others write, an
 * input arbitrary and the check every input must pass: finish within FUZZ_MAX_MS (default 1000 ms) and
 * either return or throw an UnderstudyError, never anything else.
 *
 * Every arbitrary is a pure fast-check combinator (no fc.sample, no Math.random inside a map): the same
 * seed and path give the same input, so that FUZZ_SEED and FUZZ_PATH replay a failure.
 */
import fc from 'fast-check';
import { isUnderstudyError, parseConfigYaml } from '../src/core/index.ts';
import { parseHostConfig } from '../src/config/index.ts';
import { parseReply } from '../src/mail/index.ts';
import { parsePackages, parsePatchIndex, parseRelease, resolveMonitorConfig } from '../src/monitor/index.ts';

const maxMs = Number(process.env.FUZZ_MAX_MS ?? 1000);

/** Text pieces parsers trip on: separators, field names, whitespace runs, encodings, deep nesting. */
const piece = (words: readonly string[]) =>
  fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom(
      ...words,
      '\n',
      '\r\n',
      ' ',
      '\t',
      ':',
      ';',
      '"',
      "'",
      '{',
      '}',
      '[',
      ']',
      '%2e%2e/',
      '\\',
      '\u0000',
    ),
    fc.integer({ min: 1, max: 30_000 }).map((n) => ' '.repeat(n)),
    // A long run of one key (`port: port: …`): the word comes from the arbitrary, never from fc.sample,
    // so that a failure's seed and path replay it.
    fc
      .tuple(fc.constantFrom(...words), fc.integer({ min: 1, max: 3_000 }))
      .map(([word, n]) => `${word}: `.repeat(n)),
    fc
      .tuple(fc.constantFrom('- ', '? ', '[', '{'), fc.integer({ min: 1, max: 3_000 }))
      .map(([indicator, n]) => indicator.repeat(n)),
  );
const text = (words: readonly string[]) => fc.array(piece(words), { maxLength: 30 }).map((p) => p.join(''));

async function bounded(name: string, work: () => unknown): Promise<void> {
  const started = performance.now();
  try {
    await work();
  } catch (error) {
    if (!isUnderstudyError(error))
      throw new Error(`${name} threw a non-UnderstudyError: ${String(error)}`, { cause: error });
  }
  const ms = performance.now() - started;
  if (ms > maxMs) throw new Error(`${name} took ${Math.round(ms)} ms (bound ${maxMs} ms)`);
}

const admin = 'alice@example.test';
/** A fuzz target: its input arbitrary and the check every input must pass (resolves, or rejects with why). */
export interface FuzzTarget {
  name: string;
  input: fc.Arbitrary<string>;
  check(input: string): Promise<void>;
}

export const targets: readonly FuzzTarget[] = [
  {
    name: 'mail reply parser',
    input: fc
      .tuple(
        fc.constantFrom(
          `From: ${admin}\r\n`,
          `From: ${admin}\r\nContent-Type: text/html\r\n`,
          'From: x@y\r\n',
          '',
        ),
        text(['Challenge', 'Decision', 'Code', 'Content-Type', 'boundary=', '=?utf-8?q?', '--', '>']),
      )
      .map(([h, b]) => `${h}Subject: re\r\n\r\n${b}`),
    check: (mail) => bounded('parseReply', () => parseReply(mail, { senders: [admin] })),
  },
  {
    name: 'patch-server index',
    input: fc.oneof(
      text(['"version"', '"patches"', '"generated"', '"file"', '"name"', '1', 'null']),
      fc.json({ maxDepth: 6 }),
      fc
        .record({
          version: fc.constant(1),
          generated: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          patches: fc.array(
            fc.record({
              name: fc.string({ maxLength: 30 }),
              categories: fc.array(fc.constantFrom('security', 'bugfix', 'feature', 'x'), { maxLength: 3 }),
              published: fc.string({ maxLength: 30 }),
              sha256: fc.string({ maxLength: 64 }),
              size: fc.integer(),
              format: fc.constantFrom('diff', 'deb', 'tar', 'x'),
              file: fc.string({ maxLength: 40 }),
            }),
            { maxLength: 20 },
          ),
        })
        .map((o) => JSON.stringify(o)),
    ),
    check: (body) =>
      bounded('parsePatchIndex', () => parsePatchIndex(Buffer.from(body), 'http://fuzz/index.json')),
  },
  {
    name: 'apt Release and Packages',
    input: text([
      'Package',
      'Version',
      'Filename',
      'SHA256',
      'Size',
      'Date',
      'Valid-Until',
      'Suite',
      ' ',
      '\n\n',
    ]),
    async check(body) {
      await bounded('parseRelease', () => parseRelease(body, 'http://fuzz/InRelease'));
      await bounded('parsePackages', () => parsePackages(body, 'http://fuzz/Packages'));
    },
  },
  {
    name: 'YAML configuration (monitor and host)',
    input: fc.oneof(
      text([
        'mail:',
        'smtp:',
        'imap:',
        'administrators:',
        '- ',
        'port:',
        '&a',
        '*a',
        '<<:',
        '!!binary',
        '{',
        '}',
      ]),
      fc.integer({ min: 1, max: 200 }).map((n) => `a: &a [${'*a,'.repeat(n)}]`),
    ),
    async check(yamlText) {
      await bounded('host config', () => parseHostConfig(yamlText, 'fuzz.yaml'));
      await bounded('monitor config', () =>
        resolveMonitorConfig(parseConfigYaml(yamlText, 'fuzz.yaml'), '/nonexistent'),
      );
    },
  },
];
