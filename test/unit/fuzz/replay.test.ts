/** `npm run fuzz` can replay a failure: its inputs depend only on the seed and the path. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { targets } from '../../../fuzz/targets.ts';

test('fuzz: every target draws the same inputs from the same seed', () => {
  for (const target of targets) {
    const first = fc.sample(target.input, { seed: 1207, numRuns: 300 });
    const again = fc.sample(target.input, { seed: 1207, numRuns: 300 });
    assert.deepEqual(again, first, target.name);
  }
});

test('fuzz: a failure of the YAML target replays from its seed and path', () => {
  const yaml = targets.find((t) => t.name.startsWith('YAML'));
  assert.ok(yaml);
  // A stand-in for a parser fault: any input with a long run of one key fails.
  const property = fc.property(yaml.input, (text) => !/(\w+:: ?){50}/.test(text));
  const found = fc.check(property, { seed: 1807, numRuns: 10_000 });
  assert.ok(found.failed, 'the stand-in fault is found');
  const replayed = fc.check(property, {
    seed: found.seed,
    path: found.counterexamplePath ?? undefined,
    endOnFailure: true,
  });
  assert.ok(replayed.failed);
  assert.deepEqual(replayed.counterexample, found.counterexample);
  assert.equal(replayed.numRuns, 1, 'the replay goes straight to the counterexample');
});
