/**
 * `npm run fuzz`: fast-check over the parsers that read what others write — mail replies (anyone),
 * feed indexes (a feed server: patch-server index, apt Release and Packages), and the YAML
 * configuration files (an operator's typo); the targets are in targets.ts. Each target gets random and
 * adversarial input for a share of the time budget (FUZZ_SECONDS, default 30). Exit code 1 with the
 * error, the seed, the path and the shrunk counterexample on failure; FUZZ_SEED and FUZZ_PATH from that
 * report replay it, FUZZ_ONLY=<target name prefix> runs one target.
 */
import fs from 'node:fs';
import fc from 'fast-check';
import { targets } from './targets.ts';

const budgetMs = Number(process.env.FUZZ_SECONDS ?? 30) * 1000;

let failed = false;
for (const target of targets) {
  const share = Math.floor(budgetMs / targets.length);
  const started = performance.now();
  if (process.env.FUZZ_ONLY && !target.name.startsWith(process.env.FUZZ_ONLY)) continue;
  // FUZZ_SEED and FUZZ_PATH (from a failure's report) replay that failure.
  const replay = process.env.FUZZ_SEED
    ? { seed: Number(process.env.FUZZ_SEED), path: process.env.FUZZ_PATH, endOnFailure: true }
    : {};
  const result = await fc.check(
    fc.asyncProperty(target.input, (input) => target.check(input)),
    {
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: share,
      markInterruptAsFailure: false,
      ...replay,
    },
  );
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
