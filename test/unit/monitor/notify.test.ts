// The monitor's notification logic with fakes: a fake feed fetcher and a fake mailer that fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { UnderstudyError, silentLogger } from '../../../src/core/index.ts';
import { createCatalogue } from '../../../src/catalogue/index.ts';
import { openStore } from '../../../src/store/index.ts';
import {
  addFeed,
  createMonitor,
  ed25519PublicKeyBase64,
  resolveMonitorConfig,
  signPatchIndex,
  type Fetcher,
} from '../../../src/monitor/index.ts';
import type { MailSender, OutgoingMail } from '../../../src/mail/index.ts';
import { monitorSchemas } from '../../helpers/stores.ts';

function fakeServer(files: Map<string, Buffer>): Fetcher {
  const get = (url: string): Buffer => {
    const body = files.get(new URL(url).pathname);
    if (!body)
      throw new UnderstudyError('FEED_UNREACHABLE', `${url}: HTTP 404`, { details: { status: 404 } });
    return body;
  };
  return {
    async fetch(r) {
      return { status: 'ok', body: get(r.url), etag: null, lastModified: null };
    },
    async download(r) {
      const body = get(r.url);
      fs.writeFileSync(r.file, body);
      return { size: body.length };
    },
  };
}

void test('each administrator is mailed once per patch, failures retried without duplicates', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-notify-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = openStore(':memory:', monitorSchemas);
  t.after(() => db.close());
  const catalogue = createCatalogue({ db, patchesDir: path.join(dir, 'patches') });
  const keys = generateKeyPairSync('ed25519');
  const content = Buffer.from('fix\n');
  const index = Buffer.from(
    JSON.stringify({
      version: 1,
      generated: new Date().toISOString(),
      patches: [
        {
          name: 'sec1',
          categories: ['security'],
          published: new Date().toISOString(),
          description: 'd',
          sha256: createHash('sha256').update(content).digest('hex'),
          size: 4,
          format: 'diff',
          file: 'sec1',
        },
        {
          name: 'feat1',
          categories: ['feature'],
          published: new Date().toISOString(),
          description: 'd',
          sha256: createHash('sha256').update(content).digest('hex'),
          size: 4,
          format: 'diff',
          file: 'feat1',
        },
      ],
    }),
  );
  const files = new Map([
    ['/index.json', index],
    ['/index.json.sig', Buffer.from(signPatchIndex(index, keys.privateKey))],
    ['/sec1', content],
    ['/feat1', content],
  ]);
  const sent: OutgoingMail[] = [];
  let failFor: string | null = 'bob@x.test';
  const mailer: MailSender = {
    async send(mail) {
      if (mail.to === failFor) throw new UnderstudyError('MAIL_FAILED', `SMTP refused ${mail.to}`);
      sent.push(mail);
      return { messageId: String(sent.length) };
    },
    close() {},
  };
  const secret = (): string => randomBytes(32).toString('hex');
  const config = resolveMonitorConfig(
    {
      mail: { from: 'u@x.test', smtp: { host: '127.0.0.1', port: 25 } },
      administrators: [
        { name: 'alice', email: 'alice@x.test', secret: secret() },
        { name: 'bob', email: 'bob@x.test', secret: secret(), categories: ['security'] },
      ],
    },
    dir,
  );
  const monitor = createMonitor({
    db,
    catalogue,
    config,
    stateDir: dir,
    fetcher: fakeServer(files),
    managedLcs: { list: async () => [], installedPackages: async () => new Map() },
    mailer,
    logger: silentLogger,
  });
  addFeed(db, {
    name: 'f',
    kind: 'patch-server',
    url: 'http://patches.invalid/',
    intervalSeconds: 60,
    options: { publicKey: ed25519PublicKeyBase64(keys.publicKey) },
  });

  const [r] = await monitor.pollNow('f'); // registers, then the notification to bob fails
  assert.equal(r?.registered, 2);
  assert.deepEqual(
    sent.map((m) => m.to),
    ['alice@x.test'],
  );
  assert.equal(monitor.status().pendingNotifications, 2, 'still pending after a failure');

  failFor = null;
  assert.equal(await monitor.notifyPending(), 1);
  assert.deepEqual(
    sent.map((m) => m.to),
    ['alice@x.test', 'bob@x.test'],
    'alice is not mailed twice',
  );
  assert.match(sent[1]?.text ?? '', /sec1/);
  assert.doesNotMatch(sent[1]?.text ?? '', /feat1/);
  assert.equal(monitor.status().pendingNotifications, 0);
  assert.equal(await monitor.notifyPending(), 0);
});
