/**
 * `npm run fuzz`: fast-check over the parsers that read what others write — mail replies (anyone),
 * feed indexes (a feed server: patch-server index, apt Release and Packages), and the YAML
 * configuration files (an operator's typo). Each target gets random and adversarial input for a share
 * of the time budget (FUZZ_SECONDS, default 30) and must, for every input: finish within
 * FUZZ_MAX_MS (default 1000 ms; the parsers cap their input) and either return or throw an
 * UnderstudyError, never anything else. Exit code 1 with the shrunk counterexample on failure.
 */
import fs from 'node:fs';
import fc from 'fast-check';
import { isUnderstudyError, parseConfigYaml } from '../src/core/index.ts';
import { parseHostConfig } from '../src/config/index.ts';
import { parseReply } from '../src/mail/index.ts';
import { parsePackages, parsePatchIndex, parseRelease, resolveMonitorConfig } from '../src/monitor/index.ts';

const budgetMs = Number(process.env.FUZZ_SECONDS ?? 30) * 1000;
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
    fc.integer({ min: 1, max: 3_000 }).map((n) => '['.repeat(n)),
    fc
      .integer({ min: 1, max: 3_000 })
      .map((n) => `${fc.sample(fc.constantFrom(...words), 1)[0] ?? ''}: `.repeat(n)),
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
const targets: { name: string; property: fc.IAsyncProperty<[string]> | fc.IAsyncProperty<[unknown]> }[] = [
  {
    name: 'mail reply parser',
    property: fc.asyncProperty(
      fc
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
      (mail) => bounded('parseReply', () => parseReply(mail, { senders: [admin] })),
    ),
  },
  {
    name: 'patch-server index',
    property: fc.asyncProperty(
      fc.oneof(
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
      (body) =>
        bounded('parsePatchIndex', () => parsePatchIndex(Buffer.from(body), 'http://fuzz/index.json')),
    ),
  },
  {
    name: 'apt Release and Packages',
    property: fc.asyncProperty(
      text(['Package', 'Version', 'Filename', 'SHA256', 'Size', 'Date', 'Valid-Until', 'Suite', ' ', '\n\n']),
      async (body) => {
        await bounded('parseRelease', () => parseRelease(body, 'http://fuzz/InRelease'));
        await bounded('parsePackages', () => parsePackages(body, 'http://fuzz/Packages'));
      },
    ),
  },
  {
    name: 'YAML configuration (monitor and host)',
    property: fc.asyncProperty(
      fc.oneof(
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
      async (yamlText) => {
        await bounded('host config', () => parseHostConfig(yamlText, 'fuzz.yaml'));
        await bounded('monitor config', () =>
          resolveMonitorConfig(parseConfigYaml(yamlText, 'fuzz.yaml'), '/nonexistent'),
        );
      },
    ),
  },
];

let failed = false;
for (const target of targets) {
  const share = Math.floor(budgetMs / targets.length);
  const started = performance.now();
  if (process.env.FUZZ_ONLY && !target.name.startsWith(process.env.FUZZ_ONLY)) continue;
  // FUZZ_SEED and FUZZ_PATH (from a failure's report) replay that failure.
  const replay = process.env.FUZZ_SEED
    ? { seed: Number(process.env.FUZZ_SEED), path: process.env.FUZZ_PATH, endOnFailure: true }
    : {};
  const result = await fc.check(target.property as fc.IAsyncProperty<[unknown]>, {
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: share,
    markInterruptAsFailure: false,
    ...replay,
  });
  if (result.failed && process.env.FUZZ_COUNTEREXAMPLE)
    fs.writeFileSync(process.env.FUZZ_COUNTEREXAMPLE, JSON.stringify(result.counterexample));
  const runs = result.numRuns;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (result.failed) {
    failed = true;
    // The error first: a shrunk counterexample can be long enough to hide it.
    const cause =
      result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    console.error(
      `FAIL ${target.name} after ${runs} inputs (${seconds} s): ${cause.slice(0, 500)}\n` +
        `seed ${result.seed}, path ${result.counterexamplePath ?? '-'}\n` +
        `counterexample: ${JSON.stringify(result.counterexample).slice(0, 2000)}`,
    );
  } else console.log(`ok   ${target.name}: ${runs} inputs in ${seconds} s`);
}
process.exit(failed ? 1 : 0);
