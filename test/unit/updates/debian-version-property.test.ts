/**
 * The Debian version order of understudy against dpkg's own (`dpkg --compare-versions`), over versions
 * generated to hit the hard cases: epochs, "~" before everything (even the end), letters before other
 * symbols, leading zeros, hyphens inside the upstream part, missing revisions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { exec } from '../../../src/core/index.ts';
import { compareDebianVersions } from '../../../src/monitor/index.ts';

const digitRun = fc.stringMatching(/^[0-9]{1,3}$/);
const symbolRun = fc.stringMatching(/^[a-zA-Z.+~]{1,3}$/);
/** Alternating digit and non-digit runs, as version parts are compared. */
function part(first: fc.Arbitrary<string>, extra: string): fc.Arbitrary<string> {
  return fc
    .tuple(
      first,
      fc.array(fc.tuple(symbolRun, fc.option(digitRun)), { maxLength: 3 }),
      fc.constantFrom('', extra),
    )
    .map(([head, rest, tail]) => `${head}${rest.map(([s, d]) => `${s}${d ?? ''}`).join('')}${tail}`);
}
const upstream = part(digitRun, '~');
const revision = part(fc.stringMatching(/^[0-9a-z]{1,2}$/), '+deb12u1');
const version = fc
  .tuple(fc.option(fc.integer({ min: 0, max: 3 })), upstream, fc.option(revision), fc.option(upstream))
  .map(([epoch, up, rev, hyphenated]) => {
    // A hyphen inside the upstream part is allowed only when there is a revision.
    const upstreamPart = rev !== null && hyphenated !== null ? `${up}-${hyphenated}` : up;
    return `${epoch === null ? '' : `${epoch}:`}${upstreamPart}${rev === null ? '' : `-${rev}`}`;
  });

async function dpkgSays(a: string, b: string): Promise<number> {
  for (const [op, sign] of [
    ['lt', -1],
    ['eq', 0],
  ] as const) {
    const r = await exec(['dpkg', '--compare-versions', a, op, b], { okCodes: [0, 1] });
    if (r.exitCode === 0) return sign;
  }
  return 1;
}

void test('compareDebianVersions orders versions exactly as dpkg --compare-versions', async () => {
  await fc.assert(
    fc.asyncProperty(version, version, async (a, b) => {
      const ours = Math.sign(compareDebianVersions(a, b));
      assert.equal(ours, await dpkgSays(a, b), `${a} vs ${b}`);
      assert.equal(Math.sign(compareDebianVersions(b, a)), -ours, `antisymmetric: ${b} vs ${a}`);
    }),
    { numRuns: 300 },
  );
});

void test('compareDebianVersions: near-equal versions (prefixes, "~", zeros) agree with dpkg', async () => {
  const near = fc
    .tuple(version, fc.constantFrom('~', '~~', '0', '.0', 'a', '+', '-0', '-1~', ''))
    .map(([v, s]) => [v, `${v}${s}`] as const);
  await fc.assert(
    fc.asyncProperty(near, async ([a, b]) => {
      if (b.includes('-') && !/^[^-]+-[^-]*$/.test(b) && a.split('-').length === 1) return;
      assert.equal(Math.sign(compareDebianVersions(a, b)), await dpkgSays(a, b), `${a} vs ${b}`);
    }),
    { numRuns: 200 },
  );
});
