/**
 * Finding 13, the check itself: what the manager reads on a standby's system disk to verify the
 * patch results the standby reported. Real .deb and tar files, a real directory tree as the disk.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Patch } from '../../../src/catalogue/index.ts';
import { exec } from '../../../src/core/index.ts';
import { verifyPatchesOnDisk } from '../../../src/run/index.ts';

let dir: string;
let deb: Patch;
let archive: Patch;

const patchOf = (name: string, format: Patch['format'], filePath: string): Patch =>
  ({ name, format, filePath }) as Patch;

function write(root: string, file: string, content: string): void {
  fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  fs.writeFileSync(path.join(root, file), content);
}

const status = (state: string, version: string): string =>
  `Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\nPackage: demo-fix\nStatus: ${state}\nArchitecture: all\nVersion: ${version}\nDescription: x\n continued\n`;

/** A standby disk where demo-fix 1.0.1 and the archive are applied honestly. */
function honestRoot(name: string): string {
  const root = path.join(dir, name);
  write(root, 'var/lib/dpkg/status', status('install ok installed', '1.0.1'));
  write(root, 'usr/share/demo/fix', 'CVE-2026-0001 fixed\n');
  write(root, 'usr/bin/demo-tool', '#!/bin/sh\necho 1.0.1\n');
  write(root, 'etc/demo.conf', 'changed by the administrator\n');
  write(root, 'etc/motd', 'patched by archive\n');
  return root;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-verify-test-'));
  const pkg = path.join(dir, 'pkg');
  write(
    pkg,
    'DEBIAN/control',
    'Package: demo-fix\nVersion: 1.0.1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n',
  );
  write(pkg, 'DEBIAN/conffiles', '/etc/demo.conf\n');
  write(pkg, 'usr/share/demo/fix', 'CVE-2026-0001 fixed\n');
  write(pkg, 'usr/bin/demo-tool', '#!/bin/sh\necho 1.0.1\n');
  write(pkg, 'etc/demo.conf', 'shipped\n');
  const debFile = path.join(dir, 'demo-fix_1.0.1_all.deb');
  await exec(['dpkg-deb', '--root-owner-group', '--build', pkg, debFile]);
  deb = patchOf('demo-fix', 'deb', debFile);
  const work = path.join(dir, 'archive');
  write(work, 'files/etc/motd', 'patched by archive\n');
  const sha = (await exec(['sha256sum', 'etc/motd'], { cwd: path.join(work, 'files') })).stdout;
  write(work, 'manifest.after', sha);
  const tarFile = path.join(dir, 'motd.tar');
  await exec(['tar', '-C', work, '-cf', tarFile, 'files', 'manifest.after']);
  archive = patchOf('motd', 'archive', tarFile);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('finding 13: an honestly patched disk passes: dpkg status and package files, manifest.after; conffiles and scripts are left out', async () => {
  const results = await verifyPatchesOnDisk({
    root: honestRoot('honest'),
    standby: 'lc2',
    patches: [deb, archive, patchOf('s', 'script', '/nonexistent')],
  });
  assert.deepEqual(
    results.map((r) => [r.name, r.outcome, r.detail]),
    [
      ['demo-fix', 'checked', 'demo-fix 1.0.1 installed, 2 file(s)'],
      ['motd', 'checked', 'manifest.after, 1 file(s)'],
      ['s', 'not-checkable', 'a script patch leaves nothing on the disk to check'],
    ],
  );
});

test('finding 13: a package not installed, at another version or with a changed file is refused, naming each difference', async () => {
  const notInstalled = honestRoot('not-installed');
  write(notInstalled, 'var/lib/dpkg/status', status('deinstall ok config-files', '1.0.0'));
  await assert.rejects(
    verifyPatchesOnDisk({ root: notInstalled, standby: 'lc2', patches: [deb] }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'RUN_PATCH_UNVERIFIED');
      assert.match(
        e.message,
        /The standby "lc2" reported demo-fix applied, but its system disk says otherwise/,
      );
      assert.match(e.message, /demo-fix is "deinstall ok config-files" in the dpkg status/);
      assert.match(e.message, /demo-fix is at version 1\.0\.0 in the dpkg status, not 1\.0\.1/);
      return true;
    },
  );
  const changed = honestRoot('changed');
  write(changed, 'usr/bin/demo-tool', '#!/bin/sh\necho 1.0.0\n');
  fs.rmSync(path.join(changed, 'usr/share/demo/fix'));
  await assert.rejects(verifyPatchesOnDisk({ root: changed, standby: 'lc2', patches: [deb] }), (e: Error) => {
    assert.match(e.message, /\/usr\/bin\/demo-tool differs from the one in demo-fix 1\.0\.1/);
    assert.match(e.message, /\/usr\/share\/demo\/fix is missing/);
    return true;
  });
  const noStatus = honestRoot('no-status');
  fs.rmSync(path.join(noStatus, 'var/lib/dpkg/status'));
  await assert.rejects(
    verifyPatchesOnDisk({ root: noStatus, standby: 'lc2', patches: [deb] }),
    /the dpkg status does not list demo-fix/,
  );
});

test('finding 13: an archive whose manifest.after does not match the disk is refused', async () => {
  const root = honestRoot('archive-lie');
  write(root, 'etc/motd', 'not patched\n');
  await assert.rejects(
    verifyPatchesOnDisk({ root, standby: 'lc2', patches: [archive] }),
    /motd: \/etc\/motd does not have the sha256 of manifest\.after/,
  );
});

test('finding 13: a file replaced by a symlink to a host file with the right content is read inside the disk, never on the host', async () => {
  const root = honestRoot('symlink');
  // The host has the right content at this absolute path; inside the disk the link points nowhere.
  const hostCopy = path.join(dir, 'host-copy-of-fix');
  fs.writeFileSync(hostCopy, 'CVE-2026-0001 fixed\n');
  fs.rmSync(path.join(root, 'usr/share/demo/fix'));
  fs.symlinkSync(hostCopy, path.join(root, 'usr/share/demo/fix'));
  await assert.rejects(
    verifyPatchesOnDisk({ root, standby: 'lc2', patches: [deb] }),
    /\/usr\/share\/demo\/fix is missing/,
  );
  // The dpkg status through a link out of the disk is not read from the host either.
  const statusRoot = honestRoot('status-link');
  const hostStatus = path.join(dir, 'host-status');
  fs.writeFileSync(hostStatus, status('install ok installed', '1.0.1'));
  fs.rmSync(path.join(statusRoot, 'var/lib/dpkg/status'));
  fs.symlinkSync(hostStatus, path.join(statusRoot, 'var/lib/dpkg/status'));
  await assert.rejects(
    verifyPatchesOnDisk({ root: statusRoot, standby: 'lc2', patches: [deb] }),
    /does not list demo-fix/,
  );
});

test('finding 13: a package file diverted by another package is checked where it was diverted to', async () => {
  const root = honestRoot('diverted');
  fs.renameSync(path.join(root, 'usr/bin/demo-tool'), path.join(root, 'usr/bin/demo-tool.real'));
  write(root, 'usr/bin/demo-tool', '#!/bin/sh\nexec wrapper\n');
  write(root, 'var/lib/dpkg/diversions', '/usr/bin/demo-tool\n/usr/bin/demo-tool.real\nwrapper-pkg\n');
  const [result] = await verifyPatchesOnDisk({ root, standby: 'lc2', patches: [deb] });
  assert.equal(result?.outcome, 'checked');
});
