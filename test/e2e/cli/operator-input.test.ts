/**
 * What an operator meets at the command line with wrong input, through the real CLI in a child
 * process: a clear error with a code and a hint instead of a crash, nothing registered, and `host
 * destroy` leaving nothing of the demo behind.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec, type ExecResult } from '../../../src/core/index.ts';
import { createCatalogue, patchesDirOf } from '../../../src/catalogue/index.ts';
import { cliIn, createTestHost, repoRoot, type TestHost } from '../../helpers/host-fixture.ts';

interface JsonError {
  error: { code: string; message: string; hint: string };
}

function errorOf(out: ExecResult): JsonError['error'] {
  assert.doesNotMatch(out.stderr, /understudy hit a bug/, out.stderr);
  assert.notEqual(out.exitCode, 70, `exit code 70 (a bug): ${out.stderr}`);
  assert.notEqual(out.exitCode, 0, `accepted: ${out.stdout}`);
  return (JSON.parse(out.stdout) as JsonError).error;
}

/** A valid patch of each format, and the bad files an operator can get wrong. */
async function makeFiles(dir: string): Promise<Record<string, string>> {
  const file = (name: string, data: string | Buffer): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, data);
    return p;
  };
  const debRoot = path.join(dir, 'pkg');
  fs.mkdirSync(path.join(debRoot, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(debRoot, 'opt/fix'), { recursive: true });
  fs.writeFileSync(
    path.join(debRoot, 'DEBIAN/control'),
    'Package: fix\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n',
  );
  fs.writeFileSync(path.join(debRoot, 'opt/fix/readme'), 'fixed\n');
  await exec(['dpkg-deb', '--build', '--root-owner-group', debRoot, path.join(dir, 'good.deb')]);
  const archiveRoot = path.join(dir, 'arch');
  fs.mkdirSync(path.join(archiveRoot, 'files/opt'), { recursive: true });
  fs.writeFileSync(path.join(archiveRoot, 'files/opt/new'), 'new\n');
  await exec(['tar', '-cf', path.join(dir, 'good.tar'), '-C', archiveRoot, 'files']);
  await exec(['tar', '-cf', path.join(dir, 'nofiles.tar'), '-C', path.join(archiveRoot, 'files'), 'opt']);
  return {
    goodDiff: file('good.diff', '--- a/opt/x\n+++ b/opt/x\n@@ -1 +1 @@\n-old\n+new\n'),
    goodScript: file('good.sh', '#!/bin/sh\ntrue\n'),
    goodDeb: path.join(dir, 'good.deb'),
    goodArchive: path.join(dir, 'good.tar'),
    randomDiff: file('random.diff', crypto.randomBytes(4096)),
    textNotDiff: file('notes.diff', 'this is not a diff\n'),
    emptyDeb: file('empty.deb', ''),
    textDeb: file('text.deb', 'Package: fix\n'),
    badArchive: file('bad.tar', crypto.randomBytes(10_240)),
    archiveWithoutFiles: path.join(dir, 'nofiles.tar'),
    scriptWithoutInterpreter: file('plain.sh', 'echo hi\n'),
  };
}

describe('operator input', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-input-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('issue 16 item 4: patch add refuses a missing file, a directory and a file not of its format; registers valid ones', async () => {
    const stateDir = path.join(dir, 'state-4');
    const files = await makeFiles(dir);
    const add = (file: string, format: string, name: string): Promise<ExecResult> =>
      cliIn(stateDir, [
        '--json',
        'patch',
        'add',
        file,
        '--category',
        'security',
        '--format',
        format,
        '--name',
        name,
      ]);

    const refused: [string, string, string, RegExp][] = [
      [
        path.join(dir, 'no-such-file.diff'),
        'diff',
        'PATCH_FILE_NOT_FOUND',
        /There is no file .*no-such-file\.diff/,
      ],
      [dir, 'archive', 'PATCH_FILE_INVALID', /is a directory/],
      [
        files.randomDiff!,
        'diff',
        'PATCH_FILE_INVALID',
        /random\.diff is not a valid diff patch: it holds binary data/,
      ],
      [
        files.textNotDiff!,
        'diff',
        'PATCH_FILE_INVALID',
        /notes\.diff is not a valid diff patch: it has no .* file header/,
      ],
      [files.emptyDeb!, 'deb', 'PATCH_FILE_INVALID', /empty\.deb is empty/],
      [
        files.textDeb!,
        'deb',
        'PATCH_FILE_INVALID',
        /text\.deb is not a valid deb patch: dpkg-deb cannot read it/,
      ],
      [
        files.badArchive!,
        'archive',
        'PATCH_FILE_INVALID',
        /bad\.tar is not a valid archive patch: tar cannot read it/,
      ],
      [files.archiveWithoutFiles!, 'archive', 'PATCH_FILE_INVALID', /nofiles\.tar .* no files\/ directory/],
      [files.scriptWithoutInterpreter!, 'script', 'PATCH_FILE_INVALID', /plain\.sh .* neither "#!"/],
    ];
    const outs = await Promise.all(refused.map(([file, format], i) => add(file, format, `bad-${i}`)));
    outs.forEach((out, i) => {
      const [file, , code, message] = refused[i]!;
      const error = errorOf(out);
      assert.equal(error.code, code, `${file}: ${error.message}`);
      assert.match(error.message, message);
      assert.ok(error.hint.length > 0, 'a hint');
      assert.equal(out.exitCode, 1);
    });
    // The person-readable form too: error + hint, no stack.
    const human = await cliIn(stateDir, ['patch', 'add', dir, '--category', 'security', '--format', 'diff']);
    assert.equal(human.exitCode, 1);
    assert.match(human.stderr, /^error: .* is a directory\nhint: /);

    const good: [string, string][] = [
      [files.goodDiff!, 'diff'],
      [files.goodScript!, 'script'],
      [files.goodDeb!, 'deb'],
      [files.goodArchive!, 'archive'],
    ];
    for (const [file, format] of good) {
      const out = await add(file, format, `good-${format}`);
      assert.equal(out.exitCode, 0, out.stderr);
    }
    const listed = JSON.parse((await cliIn(stateDir, ['--json', 'patch', 'list'])).stdout) as {
      patches: { name: string }[];
    };
    assert.deepEqual(listed.patches.map((p) => p.name).sort(), [
      'good-archive',
      'good-deb',
      'good-diff',
      'good-script',
    ]);
  });

  describe('with a host', () => {
    let t: TestHost;
    before(async () => {
      t = await createTestHost();
      await t.lc({ name: 'web', addresses: [`${t.prefix}.10`], role: 'active' }, { start: false });
      const file = path.join(t.stateDir, 'fix.sh');
      fs.writeFileSync(file, '#!/bin/sh\ntrue\n');
      await t.cli(['patch', 'add', file, '--category', 'security', '--format', 'script', '--name', 'fix']);
    });
    after(async () => t?.dispose());

    test('issue 16 item 5: patch mark for an unknown LC is refused; run names the real cause', async () => {
      const mark = await t.cli(['--json', 'patch', 'mark', 'fix', '--lc', 'wbe', '--next-run', 'on'], {
        okCodes: [0, 1],
      });
      const markError = errorOf(mark);
      assert.equal(markError.code, 'LC_NOT_FOUND');
      assert.match(markError.message, /no logical computer named "wbe"/);
      assert.match(markError.hint, /understudy lc list/);
      const list = JSON.parse((await t.cli(['--json', 'patch', 'list', '--lc', 'wbe'])).stdout) as {
        patches: { state: unknown }[];
      };
      assert.equal(list.patches[0]?.state, null, 'nothing was marked for the unknown LC');
      const unknownPatch = errorOf(
        await t.cli(['--json', 'patch', 'mark', 'nope', '--lc', 'web', '--next-run', 'on'], { okCodes: [1] }),
      );
      assert.equal(unknownPatch.code, 'PATCH_NOT_FOUND');

      // An unknown LC is named as such, whatever is marked.
      const runUnknown = errorOf(await t.cli(['--json', 'run', 'wbe'], { okCodes: [1] }));
      assert.equal(runUnknown.code, 'LC_NOT_FOUND');
      assert.match(runUnknown.message, /"wbe"/);

      // Nothing marked: says so and how to mark.
      const runNothing = errorOf(await t.cli(['--json', 'run', 'web'], { okCodes: [1] }));
      assert.equal(runNothing.code, 'RUN_NOTHING_TO_DO');
      assert.match(runNothing.message, /No patch is marked "apply at next run" for "web"/);
      assert.match(runNothing.hint, /understudy patch mark <name> --lc web --next-run on/);

      // Marked, but applied already on that LC: says that, not "nothing marked".
      const catalogue = createCatalogue({ db: t.app.db, patchesDir: patchesDirOf(t.stateDir) });
      catalogue.recordResult('fix', 'web', { state: 'ok', exitCode: 0 });
      await t.cli(['patch', 'mark', 'fix', '--lc', 'web', '--next-run', 'on']);
      const runApplied = errorOf(await t.cli(['--json', 'run', 'web'], { okCodes: [1] }));
      assert.equal(runApplied.code, 'RUN_NOTHING_TO_DO');
      assert.match(runApplied.message, /marked .* for "web" is applied already: fix \(/);
    });
  });

  test(
    'issue 16 item 6: host destroy removes the demo client namespace and the patch files',
    { timeout: 600_000 },
    async () => {
      // The busybox demo: two pools of sparse images under /tmp, a short patch run at 100 requests/s.
      const demo = await exec(
        [
          process.execPath,
          '--import',
          'tsx',
          path.join(repoRoot, 'src/cli/entry.ts'),
          '--json',
          'demo',
          '--driver',
          'namespace',
          '--keep',
          '--rate',
          '100',
        ],
        // Exit 1 is the demo's verdict on a missed latency target; what is checked here is the cleanup.
        { cwd: repoRoot, timeoutMs: 300_000, okCodes: [0, 1] },
      );
      const { stateDir } = JSON.parse(demo.stdout) as { stateDir: string };
      const clients: string[] = [];
      try {
        const status = JSON.parse((await cliIn(stateDir, ['--json', 'host', 'status'])).stdout) as {
          network: { bridge: string };
        };
        // The demo's client: a veth port utc<id> on the demo bridge whose other end is in netns ustc-<id>.
        const ports = JSON.parse(
          (await exec(['ip', '-j', 'link', 'show', 'master', status.network.bridge])).stdout,
        ) as { ifname: string }[];
        for (const port of ports)
          if (/^utc[0-9a-f]{6}$/.test(port.ifname)) clients.push(`ustc-${port.ifname.slice(3)}`);
        assert.equal(clients.length, 1, `the demo client on ${status.network.bridge}`);
        assert.ok(fs.existsSync(`/run/netns/${clients[0]}`));
        assert.ok(fs.readdirSync(patchesDirOf(stateDir)).length > 0, 'the demo registered its patch');

        const destroyed = await cliIn(stateDir, ['host', 'destroy', '--force']);
        assert.equal(destroyed.exitCode, 0, destroyed.stderr);

        assert.ok(!fs.existsSync(`/run/netns/${clients[0]}`), `the client namespace ${clients[0]} is gone`);
        assert.ok(!fs.existsSync(`/sys/class/net/utc${clients[0]!.slice(5)}`), 'its veth is gone');
        const left = fs.existsSync(stateDir) ? fs.readdirSync(stateDir, { recursive: true }) : [];
        assert.deepEqual(left, [], `nothing left in ${stateDir}`);
      } finally {
        for (const netns of clients) {
          await exec(['ip', 'link', 'del', `utc${netns.slice(5)}`], { okCodes: [0, 1] });
          await exec(['ip', 'netns', 'del', netns], { okCodes: [0, 1] });
        }
        if (fs.existsSync(stateDir)) {
          await cliIn(stateDir, ['host', 'destroy', '--force']);
          fs.rmSync(stateDir, { recursive: true, force: true });
        }
      }
    },
  );
});
