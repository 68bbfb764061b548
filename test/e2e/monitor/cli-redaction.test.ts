/**
 * Feed URLs may carry FTP credentials (ftp://user:password@host/): the CLI never prints them, in
 * text or in --json, in `monitor status` or in `feed list`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { exec } from '../../../src/core/index.ts';
import { tempDir } from './fixtures.ts';

const repo = path.resolve(import.meta.dirname, '../../..');

test('finding 20: FTP credentials of a feed never show in monitor status or feed list', async (t) => {
  const stateDir = tempDir('us-redact');
  t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const cli = (args: string[]) =>
    exec(['node', '--import', 'tsx', 'src/cli/entry.ts', '--state-dir', stateDir, ...args], { cwd: repo });
  await cli([
    'feed',
    'add',
    'vendor-ftp',
    '--kind',
    'patch-server',
    '--url',
    'ftp://patchuser:S3cretFtpPass@198.18.0.1/patches/',
    '--public-key',
    Buffer.alloc(32, 7).toString('base64'),
  ]);
  for (const args of [
    ['monitor', 'status'],
    ['--json', 'monitor', 'status'],
    ['feed', 'list'],
    ['--json', 'feed', 'list'],
  ]) {
    const out = await cli(args);
    assert.match(out.stdout, /198\.18\.0\.1/, `${args.join(' ')} names the server`);
    assert.ok(!out.stdout.includes('S3cretFtpPass'), `${args.join(' ')} does not print the password`);
    assert.ok(!out.stdout.includes('patchuser'), `${args.join(' ')} does not print the user`);
  }
});
