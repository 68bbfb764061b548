import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  appendCopyHistory,
  diskCopySchema,
  failCopyJob,
  getCopyJob,
  insertCopyJob,
  listCopyHistory,
  listCopyJobs,
} from '../../../src/disk-copy/index.ts';
import { openStore } from '../../../src/store/index.ts';

void describe('disk-copy store (real SQLite file)', () => {
  void it('keeps a job with its history, and a reused job id starts a fresh record', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-dc-store-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'store.db');
    let db = openStore(file, [diskCopySchema]);
    const job = {
      id: 'run1-app',
      source: '/p/lcs/lc1/app',
      destination: '/q/lcs/lc2/app',
      mode: 'send-receive' as const,
      sourceStage: '/p/s',
      destinationStage: '/q/d',
    };
    insertCopyJob(db, job);
    appendCopyHistory(db, job.id, 0, [
      { pass: 1, at: '2026-01-01T00:00:00.000Z', op: 'write', path: 'journal', offset: 0, length: 4096 },
      { pass: 1, at: '2026-01-01T00:00:00.001Z', op: 'rename', path: 'o257-7-0', pathTo: 'new' },
    ]);
    appendCopyHistory(db, job.id, 2, [
      { pass: 2, at: '2026-01-01T00:00:01.000Z', op: 'unlink', path: 'old' },
    ]);
    failCopyJob(db, job.id, 'cancelled', { code: 'DISK_COPY_CANCELLED', message: 'cancelled' });
    db.close();

    db = openStore(file, [diskCopySchema]);
    t.after(() => db.close());
    const stored = getCopyJob(db, job.id);
    assert.equal(stored.state, 'cancelled');
    assert.deepEqual(stored.error, { code: 'DISK_COPY_CANCELLED', message: 'cancelled' });
    assert.deepEqual(
      listCopyHistory(db, job.id).map((r) => [r.pass, r.op, r.path, r.pathTo, r.offset, r.length]),
      [
        [1, 'write', 'journal', undefined, 0, 4096],
        [1, 'rename', 'o257-7-0', 'new', undefined, undefined],
        [2, 'unlink', 'old', undefined, undefined, undefined],
      ],
    );
    assert.equal(listCopyHistory(db, job.id, { limit: 1, offset: 1 })[0]?.op, 'rename');

    insertCopyJob(db, job);
    assert.equal(getCopyJob(db, job.id).state, 'running');
    assert.deepEqual(listCopyHistory(db, job.id), []);
    assert.equal(listCopyJobs(db).length, 1);
    assert.throws(() => getCopyJob(db, 'nope'), { code: 'DISK_COPY_NOT_FOUND' });
  });
});
