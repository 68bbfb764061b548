/**
 * Approvals on a real SQLite file: attempts per challenge are limited and audited, and an accepted
 * approval is stored in the same transaction that consumes its challenge, so a crash before the patch
 * run starts loses nothing.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../../src/core/index.ts';
import { createCatalogue } from '../../../src/catalogue/index.ts';
import { computeApprovalCode, issueChallenge, verifyApproval } from '../../../src/mail/index.ts';
import { createMonitor, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { openStore } from '../../../src/store/index.ts';
import { monitorSchemas } from '../../helpers/stores.ts';

function setup(t: { after: (f: () => void) => void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-approvals-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'store.db');
  const db = openStore(file, monitorSchemas);
  t.after(() => db.close());
  const secret = randomBytes(32);
  const admins = [{ name: 'alice', email: 'alice@x.test', secret }];
  return { dir, file, db, secret, admins };
}

test('finding 15: wrong codes lock the challenge after the limit, even the right code then fails; every attempt is audited', (t) => {
  const { db, secret, admins } = setup(t);
  const now = new Date();
  const { challenge } = issueChallenge(db, { admin: 'alice', patches: ['p1'], ttlMs: 3600_000, now });
  const attempt = (code: string, email = 'alice@x.test') =>
    verifyApproval({
      db,
      admins,
      sender: { email },
      challenge,
      decision: { kind: 'approve-all' },
      code,
      via: 'mail',
      now,
      codeWindowMinutes: 30,
    });
  const wrong = (i: number): string => String(10_000_000 + i);
  for (let i = 0; i < 5; i++) assert.equal((attempt(wrong(i)) as { reason?: string }).reason, 'wrong-code');
  const right = computeApprovalCode({ secret, challenge, decision: { kind: 'approve-all' }, at: now });
  const locked = attempt(right);
  assert.equal(locked.ok, false);
  assert.equal(
    (locked as { reason: string }).reason,
    'locked',
    'the challenge is locked after 5 wrong codes',
  );
  attempt(right, 'mallory@x.test');
  const audit = db
    .prepare('SELECT challenge, sender, via, outcome, reason FROM approval_attempts ORDER BY id')
    .all() as { challenge: string; sender: string; outcome: string; reason: string }[];
  assert.equal(audit.length, 7, 'every attempt is in the audit log');
  assert.deepEqual(
    audit.map((a) => a.reason),
    ['wrong-code', 'wrong-code', 'wrong-code', 'wrong-code', 'wrong-code', 'locked', 'unknown-sender'],
  );
  assert.ok(audit.every((a) => a.challenge === challenge && a.outcome === 'rejected'));
});

test('finding 18: an approval accepted just before a crash still starts its patch run after the restart', async (t) => {
  const { dir, file, db, secret, admins } = setup(t);
  const catalogue = createCatalogue({ db, patchesDir: path.join(dir, 'patches') });
  const patchFile = path.join(dir, 'p1.diff');
  fs.writeFileSync(patchFile, 'fix\n');
  await catalogue.registerPatch({
    file: patchFile,
    name: 'p1',
    categories: ['security'],
    format: 'diff',
    sha256: createHash('sha256').update('fix\n').digest('hex'),
  });
  const now = new Date();
  const { challenge } = issueChallenge(db, { admin: 'alice', patches: ['p1'], ttlMs: 3600_000, now });
  const verdict = verifyApproval({
    db,
    admins,
    sender: { email: 'alice@x.test' },
    challenge,
    decision: { kind: 'approve-all' },
    code: computeApprovalCode({ secret, challenge, decision: { kind: 'approve-all' }, at: now }),
    via: 'mail',
    now,
    codeWindowMinutes: 30,
  });
  assert.equal(verdict.ok, true);
  // The manager dies here: the challenge is consumed, the decision was never applied.
  db.close();

  const db2 = openStore(file, monitorSchemas);
  t.after(() => db2.close());
  const runs: { lcs: string[]; patches: string[] }[] = [];
  const config = resolveMonitorConfig(
    {
      administrators: [{ name: 'alice', email: 'alice@x.test', secret: secret.toString('hex') }],
      monitor: { tickMs: 20 },
    },
    dir,
  );
  const monitor = createMonitor({
    db: db2,
    catalogue: createCatalogue({ db: db2, patchesDir: path.join(dir, 'patches') }),
    config,
    stateDir: dir,
    fetcher: {
      fetch: async () => {
        throw new Error('no feeds');
      },
      download: async () => {
        throw new Error('no feeds');
      },
    },
    managedLcs: { list: async () => ['lc1'], installedPackages: async () => new Map() },
    startPatchRun: async (request) => void runs.push(request),
    logger: silentLogger,
  });
  monitor.start();
  const deadline = Date.now() + 5000;
  while (runs.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await monitor.stop();
  assert.deepEqual(
    runs.map((r) => ({ lcs: r.lcs, patches: r.patches })),
    [{ lcs: ['lc1'], patches: ['p1'] }],
    'the approved run starts after the restart',
  );
  // …exactly once: the next start finds nothing left to apply.
  runs.length = 0;
  monitor.start();
  await new Promise((r) => setTimeout(r, 200));
  await monitor.stop();
  assert.equal(runs.length, 0);
});
