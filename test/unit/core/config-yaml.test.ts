/** YAML configuration files: every malformed shape is CONFIG_INVALID, in bounded time (found by `npm run fuzz`). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostConfig } from '../../../src/config/index.ts';
import { parseConfigYaml } from '../../../src/core/index.ts';

const bad = [
  // An alias bomb: the yaml package throws a ReferenceError, not a parse error.
  `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [${'*a,'.repeat(20)}]\nc: [${'*b,'.repeat(200)}]`,
  // An alias inside its own anchor: a cyclic value that took seconds to build.
  `a: &a [${'*a,'.repeat(200)}]`,
  // Deep flow nesting: the parser recurses on it.
  `${'['.repeat(5000)}${']'.repeat(5000)}`,
  'a: *nowhere',
  'a: [',
];

test('YAML config: alias bombs, cyclic aliases, deep nesting and syntax errors are CONFIG_INVALID within 200 ms', () => {
  for (const text of bad) {
    const started = performance.now();
    assert.throws(() => parseHostConfig(text, 'host.yaml'), { code: 'CONFIG_INVALID' }, text.slice(0, 40));
    assert.throws(() => parseConfigYaml(text, 'monitor.yaml'), { code: 'CONFIG_INVALID' }, text.slice(0, 40));
    const ms = performance.now() - started;
    assert.ok(ms < 200, `${text.slice(0, 30)}… took ${Math.round(ms)} ms`);
  }
  assert.deepEqual(parseConfigYaml('base: &b {x: 1}\nother: *b\n', 'ok.yaml'), {
    base: { x: 1 },
    other: { x: 1 },
  });
});

test('YAML config: a long run of implicit keys or of nested block collections on one line is CONFIG_INVALID, not a crash', () => {
  // `npm run fuzz` found `port:: port:: …` overflowing the yaml package's recursive composer. The second
  // input of each pair used to kill the whole process (V8: "RegExpCompiler Allocation failed") once the
  // first had run: no catch can help, so the nesting is refused before the document is built.
  const deep = [
    `${'- '.repeat(2_000)}x`,
    `${'- '.repeat(20_000)}x`,
    'port:: '.repeat(3_000),
    'port:: '.repeat(30_000),
    `${'? '.repeat(2_000)}x`,
    `${'? '.repeat(20_000)}x`,
    `mail:\n  smtp: ${'port: '.repeat(10_000)}25\n`,
    // The fuzz counterexample (seed 1769351330): the yaml package's own parser overflowed on it.
    `${'mail:: '.repeat(2_500)}}: `,
    // Ever deeper indentation.
    Array.from({ length: 1_000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n'),
  ];
  for (const text of deep) {
    const started = performance.now();
    assert.throws(() => parseConfigYaml(text, 'monitor.yaml'), { code: 'CONFIG_INVALID' }, text.slice(0, 40));
    assert.throws(() => parseHostConfig(text, 'host.yaml'), { code: 'CONFIG_INVALID' }, text.slice(0, 40));
    const ms = performance.now() - started;
    assert.ok(ms < 1000, `${text.slice(0, 30)}… took ${Math.round(ms)} ms`);
  }
  // Ordinary nesting is still read.
  assert.deepEqual(parseConfigYaml('mail:\n  smtp:\n    port: 25\n  to: [a, {b: [c]}]\n', 'ok.yaml'), {
    mail: { smtp: { port: 25 }, to: ['a', { b: ['c'] }] },
  });
});
