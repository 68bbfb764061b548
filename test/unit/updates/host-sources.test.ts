/**
 * The host's apt sources as apt reads them (one-line and deb822 files), and how the security archive is
 * recognised: what `feed add --from-host-sources` builds a feed from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSecuritySuite, readHostSources } from '../../../src/monitor/index.ts';

void test('one-line and deb822 sources, Signed-By, disabled stanzas and deb-src skipped', (t) => {
  const etc = fs.mkdtempSync(path.join(os.tmpdir(), 'us-etc-apt-'));
  t.after(() => fs.rmSync(etc, { recursive: true, force: true }));
  fs.mkdirSync(path.join(etc, 'sources.list.d'));
  fs.writeFileSync(
    path.join(etc, 'sources.list'),
    [
      '# comment',
      'deb http://deb.debian.org/debian bullseye main contrib',
      'deb-src http://deb.debian.org/debian bullseye main',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://security.debian.org/debian-security bullseye-security main',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(etc, 'sources.list.d/debian.sources'),
    [
      'Types: deb',
      '# http://snapshot.debian.org/archive/debian/20250520T000000Z',
      'URIs: http://deb.debian.org/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
      'Types: deb',
      'URIs: http://deb.debian.org/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
      'Types: deb',
      'Enabled: no',
      'URIs: http://example.invalid/debian',
      'Suites: sid',
      'Components: main',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(etc, 'sources.list.d/other.list.disabled'), 'deb http://x.invalid/ y main\n');
  const sources = readHostSources(etc);
  assert.deepEqual(
    sources.map((s) => [s.uri, s.suite, s.components.join(' '), s.signedBy]),
    [
      ['http://deb.debian.org/debian', 'bullseye', 'main contrib', null],
      [
        'http://security.debian.org/debian-security',
        'bullseye-security',
        'main',
        '/usr/share/keyrings/debian-archive-keyring.gpg',
      ],
      ['http://deb.debian.org/debian', 'bookworm', 'main', '/usr/share/keyrings/debian-archive-keyring.gpg'],
      [
        'http://deb.debian.org/debian',
        'bookworm-updates',
        'main',
        '/usr/share/keyrings/debian-archive-keyring.gpg',
      ],
      [
        'http://deb.debian.org/debian-security',
        'bookworm-security',
        'main',
        '/usr/share/keyrings/debian-archive-keyring.gpg',
      ],
    ],
  );
  assert.deepEqual(
    sources.filter((s) => isSecuritySuite(s.suite)).map((s) => s.suite),
    ['bullseye-security', 'bookworm-security'],
  );
  assert.ok(isSecuritySuite('buster/updates'), 'the name before bullseye');
  assert.ok(!isSecuritySuite('bookworm-updates'), 'stable-updates is not the security archive');
});
