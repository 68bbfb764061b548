// Findings of the security review that live in the API, each reproduced first:
// #8 the signed-link token must never reach a log line; #14 a short API token must be refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { redactedPaths } from '../../../src/core/index.ts';
import { buildApi } from '../../../src/api/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { issueChallenge, signApprovalLink } from '../../../src/mail/index.ts';
import { openMonitorStore } from '../../helpers/stores.ts';

void test('finding 8: the signed-link token and bearer tokens never appear in the log', async (t) => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-api-log-'));
  t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const logFile = path.join(stateDir, 'daemon.log');
  const apiToken = randomBytes(32).toString('base64url');
  const linkSecret = randomBytes(32).toString('hex');
  const config = resolveMonitorConfig(
    {
      api: { token: apiToken, linkSecret, publicUrl: 'http://127.0.0.1:8642' },
      administrators: [
        { name: 'alice', email: 'alice@example.test', secret: randomBytes(32).toString('hex') },
      ],
    },
    stateDir,
  );
  // The daemon's own logger settings (level info, the redaction paths), written to a file.
  const destination = pino.destination({ dest: logFile, sync: true });
  const logger = pino({ level: 'info', redact: { paths: redactedPaths, censor: '[redacted]' } }, destination);
  const { db, catalogue } = openMonitorStore(stateDir);
  const monitor = createMonitor({
    db,
    catalogue,
    config,
    stateDir,
    fetcher: realFetcher,
    managedLcs: { list: async () => ['lc1'], installedPackages: async () => new Map() },
    logger,
  });
  const app = buildApi({ db, catalogue, monitor, config, logger });
  t.after(async () => {
    await app.close();
    db.close();
  });
  const c = issueChallenge(db, { admin: 'alice', patches: ['p1'], ttlMs: 3600_000, now: new Date() });
  const linkToken = signApprovalLink(Buffer.from(linkSecret, 'hex'), {
    challenge: c.challenge,
    decision: { kind: 'approve-all' },
    admin: 'alice',
    expiresAt: Date.now() + 3600_000,
  });
  const page = await app.inject({ url: `/v1/approvals/link?t=${linkToken}` });
  assert.equal(page.statusCode, 200);
  await app.inject({
    method: 'POST',
    url: `/v1/approvals/link?t=${linkToken}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `t=${linkToken}`,
  });
  await app.inject({
    url: `/v1/patches?token=${apiToken}`,
    headers: { authorization: `Bearer ${apiToken}` },
  });
  destination.flushSync();
  const log = fs.readFileSync(logFile, 'utf8');
  assert.match(log, /\/v1\/approvals\/link/, 'the requests are logged');
  const signature = linkToken.split('.').pop() ?? linkToken;
  assert.ok(!log.includes(signature), `the link token is in the log:\n${log}`);
  assert.ok(!log.includes(apiToken), 'the API token is in the log');
});

void test('finding 14: an API token of less than 128 bits is refused', () => {
  const stateDir = os.tmpdir();
  for (const token of ['x', 'tok-123', 'a'.repeat(31)]) {
    assert.throws(
      () => resolveMonitorConfig({ api: { token } }, stateDir),
      (error: { code?: string }) => error.code === 'CONFIG_INVALID',
      `token "${token}" accepted`,
    );
  }
  assert.doesNotThrow(() =>
    resolveMonitorConfig({ api: { token: randomBytes(16).toString('hex') } }, stateDir),
  );
});
