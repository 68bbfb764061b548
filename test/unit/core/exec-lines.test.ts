// exec hands a command's stdout to onStdoutLine line by line as it arrives (a partial last line at
// the end), and debootstrap's own "I: …" lines become progress of the debootstrap phase.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exec } from '../../../src/core/index.ts';
import { debootstrapLine, type ImageBuildPhase } from '../../../src/images/index.ts';

void test('onStdoutLine gets every line, including a last one without a newline', async () => {
  const lines: string[] = [];
  const result = await exec(['printf', 'I: Retrieving Release\\nI: Extracting bash...\\nlast'], {
    onStdoutLine: (line) => lines.push(line),
  });
  assert.deepEqual(lines, ['I: Retrieving Release', 'I: Extracting bash...', 'last']);
  assert.equal(result.stdout, 'I: Retrieving Release\nI: Extracting bash...\nlast');
});

void test("debootstrap's I: lines are progress of the debootstrap phase; other lines are not", () => {
  const seen: [string, ImageBuildPhase | undefined][] = [];
  for (const line of [
    'I: Retrieving Release',
    'W: Cannot check Release signature',
    'I: Base system installed successfully.',
  ])
    debootstrapLine(line, (l, phase) => seen.push([l, phase]));
  assert.deepEqual(seen, [
    ['Retrieving Release', 'debootstrap'],
    ['Base system installed successfully.', 'debootstrap'],
  ]);
});
