/**
 * Finding 19: recovering interrupted disk copies at start must leave alone a copy that another live
 * manager process is still making, and clean up one whose process is gone.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { spawnProcess } from '../../../src/core/index.ts';
import { diskCopySchema, getCopyJob, recoverCopyJobs } from '../../../src/disk-copy/index.ts';
import { openStore } from '../../../src/store/index.ts';

test('finding 19: recoverCopyJobs leaves a copy running in another process alone, and recovers it once that process died', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-dc-lease-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const dbFile = path.join(dir, 'store.db');
  const db = openStore(dbFile, [diskCopySchema]);
  t.after(() => db.close());
  const child = spawnProcess(
    [
      process.execPath,
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'copy-owner-child.ts'),
      JSON.stringify({ dbFile, id: 'job-live', dir }),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => child.child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.child.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('copying') && resolve());
    void child.done.then((r) => reject(new Error(`the copying process ended: ${r.stderr}`)));
  });

  assert.deepEqual(await recoverCopyJobs(db), [], 'a copy whose process lives is not recovered');
  assert.equal(getCopyJob(db, 'job-live').state, 'running');

  child.child.kill('SIGKILL');
  await child.done;
  assert.deepEqual(await recoverCopyJobs(db), ['job-live'], 'once its process died, it is');
  assert.equal(getCopyJob(db, 'job-live').state, 'failed');
});
