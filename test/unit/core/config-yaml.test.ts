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
