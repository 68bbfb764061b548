/** `npm run build` ships every file the code reads at run time, not only the compiled TypeScript. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { exec } from '../../../src/core/index.ts';

const root = path.resolve(import.meta.dirname, '../../..');

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

test('the build ships the shell scripts and assets next to the compiled code, executables kept executable', async () => {
  await exec(['npm', 'run', 'build'], { cwd: root, timeoutMs: 600_000 });
  const needed = [
    ...filesUnder(path.join(root, 'src')).filter((f) => !f.endsWith('.ts')),
    ...filesUnder(path.join(root, 'assets')),
  ];
  assert.ok(needed.some((f) => f.endsWith('lc-supervise.sh')));
  for (const file of needed) {
    const shipped = path.join(root, 'dist', file);
    assert.ok(fs.existsSync(shipped), `dist/${file} is shipped`);
    assert.equal(
      fs.statSync(shipped).mode & 0o111,
      fs.statSync(path.join(root, file)).mode & 0o111,
      `${file} mode`,
    );
  }
  assert.ok(fs.existsSync(path.join(root, 'dist/src/cli/entry.js')));
});
