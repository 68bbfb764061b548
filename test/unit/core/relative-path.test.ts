/** Paths from patch indexes and apt Packages indexes are normalised, then checked, in one place. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePackages, parsePatchIndex } from '../../../src/monitor/index.ts';

const sneaky = [
  '../secret',
  '%2e%2e/secret',
  '%2E%2e/%2e%2E/etc/passwd',
  'a/%2e%2e/%2e%2e/b',
  '%252e%252e/secret',
  '..%2fsecret',
  '..\\secret',
  'a\\..\\..\\b',
  '%2fetc/passwd',
  '/etc/passwd',
  'http://elsewhere.test/x',
  './.%2e/x',
  'a/\u0000b',
];

function index(file: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      version: 1,
      generated: new Date().toISOString(),
      patches: [
        {
          name: 'p1',
          categories: ['security'],
          published: new Date().toISOString(),
          sha256: 'a'.repeat(64),
          size: 1,
          format: 'diff',
          file,
        },
      ],
    }),
  );
}

const packages = (filename: string): string =>
  `Package: hello\nVersion: 1.0\nArchitecture: amd64\nFilename: ${filename}\nSize: 1\nSHA256: ${'a'.repeat(64)}\nDescription: x\n`;

test('finding 17: encoded and backslash traversal in a patch index file is refused', () => {
  for (const file of sneaky)
    assert.throws(
      () => parsePatchIndex(index(file), 'http://s/index.json'),
      { code: 'FEED_INDEX_INVALID' },
      file,
    );
  assert.equal(
    parsePatchIndex(index('fixes/p1.diff'), 'http://s/index.json').patches[0]?.file,
    'fixes/p1.diff',
  );
});

test('finding 17: encoded and backslash traversal in a Packages Filename is refused', () => {
  for (const file of sneaky.filter((f) => !f.includes('\u0000')))
    assert.throws(
      () => parsePackages(packages(file), 'http://r/Packages'),
      { code: 'FEED_INDEX_INVALID' },
      file,
    );
  assert.equal(parsePackages(packages('pool/main/h/hello_1.0_amd64.deb'), 'http://r/Packages').length, 1);
});
