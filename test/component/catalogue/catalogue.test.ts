import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256Hex } from '../../../src/catalogue/index.ts';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { openCatalogue } from '../../helpers/stores.ts';

function tempState(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-cat-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

void test('registerPatch verifies the sha256, stores the file by hash and is idempotent', async (t) => {
  const state = tempState(t);
  const { db, catalogue } = openCatalogue(state);
  t.after(() => db.close());
  const file = path.join(state, 'fix.diff');
  fs.writeFileSync(file, '--- a/x\n+++ b/x\n');
  const sha256 = sha256Hex(fs.readFileSync(file));

  await assert.rejects(
    catalogue.registerPatch({
      file,
      name: 'fix',
      categories: ['security'],
      format: 'diff',
      sha256: 'a'.repeat(64),
    }),
    (e: unknown) => isUnderstudyError(e, 'PATCH_HASH_MISMATCH'),
  );
  assert.equal(catalogue.listPatches().length, 0, 'nothing registered after a mismatch');

  const first = await catalogue.registerPatch({
    file,
    name: 'fix',
    categories: ['security', 'bugfix', 'security'],
    format: 'diff',
    sha256,
  });
  assert.equal(first.created, true);
  assert.deepEqual(first.patch.categories, ['bugfix', 'security']);
  assert.equal(first.patch.filePath, path.join(state, 'patches', sha256));
  assert.equal(fs.readFileSync(first.patch.filePath, 'utf8'), '--- a/x\n+++ b/x\n');

  const again = await catalogue.registerPatch({
    file,
    name: 'fix',
    categories: ['security'],
    format: 'diff',
    sha256,
  });
  assert.equal(again.created, false);

  const other = path.join(state, 'other.diff');
  fs.writeFileSync(other, 'different');
  await assert.rejects(
    catalogue.registerPatch({
      file: other,
      name: 'fix',
      categories: ['security'],
      format: 'diff',
      sha256: sha256Hex('different'),
    }),
    (e: unknown) => isUnderstudyError(e, 'PATCH_EXISTS'),
  );
  await assert.rejects(
    catalogue.registerPatch({ file, name: 'bad', categories: ['urgent' as never], format: 'diff', sha256 }),
    (e: unknown) => isUnderstudyError(e, 'INVALID_ARGUMENT'),
  );
});

void test('next-run flags and results per logical computer', async (t) => {
  const state = tempState(t);
  const { db, catalogue } = openCatalogue(state);
  t.after(() => db.close());
  for (const name of ['p1', 'p2', 'p7']) {
    const file = path.join(state, name);
    fs.writeFileSync(file, name);
    await catalogue.registerPatch({
      file,
      name,
      categories: name === 'p2' ? ['feature'] : ['security'],
      format: 'script',
      sha256: sha256Hex(name),
    });
  }
  catalogue.markNextRun('p7', 'lc1', true);
  catalogue.markNextRun('p2', 'lc1', false);
  catalogue.markNextRun('p1', 'lc1', true);
  assert.deepEqual(
    catalogue.patchesForNextRun('lc1').map((p) => p.name),
    ['p1', 'p7'],
  );
  assert.deepEqual(catalogue.patchesForNextRun('lc2'), []);

  const ok = catalogue.recordResult('p1', 'lc1', { state: 'ok', exitCode: 0, output: 'x'.repeat(10_000) });
  assert.ok(ok.appliedAt);
  assert.equal(ok.applyNextRun, false);
  assert.equal(ok.lastOutputTail?.length, 4096);
  const failed = catalogue.recordResult('p7', 'lc1', { state: 'failed', exitCode: 3, output: 'boom' });
  assert.equal(failed.appliedAt, null);
  assert.equal(failed.applyNextRun, true, 'a failed patch stays flagged for the next run');
  assert.deepEqual(
    catalogue.patchesForNextRun('lc1').map((p) => p.name),
    ['p7'],
  );
  assert.throws(
    () => catalogue.markNextRun('nope', 'lc1', true),
    (e: unknown) => isUnderstudyError(e, 'PATCH_NOT_FOUND'),
  );
});
