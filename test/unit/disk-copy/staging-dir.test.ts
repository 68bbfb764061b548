import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { removeStagingDir } from '../../../src/disk-copy/index.ts';

void describe('removing a staging directory', () => {
  void it('refuses a relative path or the root, and removes nothing', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'understudy-staging-'));
    const before = process.cwd();
    try {
      await fs.writeFile(path.join(dir, 'kept'), 'x');
      process.chdir(dir);
      // path.dirname('') and path.dirname('snap') are '.': the holder of an empty or bare stored path.
      for (const bad of ['', '.', path.dirname(''), 'holder', '/', '/..']) {
        await assert.rejects(removeStagingDir(bad), (error: unknown) => {
          assert.ok(isUnderstudyError(error, 'INTERNAL'), String(error));
          assert.match(error.message, /must be an absolute path below \//);
          return true;
        });
      }
      assert.equal(await fs.readFile(path.join(dir, 'kept'), 'utf8'), 'x');
    } finally {
      process.chdir(before);
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  void it('removes an absolute directory with its content, and a missing one is fine', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'understudy-staging-'));
    await fs.mkdir(path.join(dir, 'sub'));
    await fs.writeFile(path.join(dir, 'sub', 'file'), 'x');
    await removeStagingDir(dir);
    await assert.rejects(fs.stat(dir), { code: 'ENOENT' });
    await removeStagingDir(dir);
  });
});
