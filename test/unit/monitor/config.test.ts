import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { resolveMonitorConfig } from '../../../src/monitor/index.ts';

void test('config: secrets from files, validation names the field', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-cfg-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'bob.secret'), `${'ab'.repeat(32)}\n`);
  const config = resolveMonitorConfig(
    {
      api: { token: 'sekrit-token-0123456789abcdef0123456789' },
      administrators: [
        { name: 'bob', email: 'Bob@X.test', secretFile: 'bob.secret', categories: ['security'] },
      ],
      autoApprove: { security: 3 },
    },
    dir,
  );
  assert.equal(config.administrators[0]?.email, 'bob@x.test');
  assert.equal(config.administrators[0]?.secret.length, 32);
  assert.deepEqual(config.autoApprove, { security: 3 });
  assert.throws(
    () => resolveMonitorConfig({ administrators: [{ name: 'x', email: 'x@y', secret: 'short' }] }, dir),
    (e: unknown) => isUnderstudyError(e, 'CONFIG_INVALID') && /at least 32 hex/.test(e.message),
  );
  assert.throws(
    () => resolveMonitorConfig({ autoApprove: { urgent: 1 } }, dir),
    (e: unknown) => isUnderstudyError(e, 'CONFIG_INVALID') && /autoApprove/.test(e.message),
  );
});
