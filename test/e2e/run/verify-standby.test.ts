/**
 * Finding 13: the standby reports its own patch results, and the manager checks them on the standby's
 * system disk. A standby whose patch execution script is edited to report every patch "ok" without
 * applying anything (or to forge the dpkg status) is caught after its reboot: the run fails with
 * RUN_PATCH_UNVERIFIED naming what is missing, the service stays on LC1 (no failed request under load)
 * and the standby gets its own disks back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCatalogue, patchesDirOf, sha256File, type Catalogue } from '../../../src/catalogue/index.ts';
import { UnderstudyError, exec } from '../../../src/core/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { getRun, listRuns, startRun, type RunDeps } from '../../../src/run/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

/** A patch execution script that reports every marked patch "ok" and applies nothing (plus `extra`). */
const lyingScript = (extra = ''): string => `#!/bin/sh
[ "$1" = "stop" ] && exit 0
T=/var/lib/understudy/patch-table
grep -q '|yes|' "$T" || exit 0
${extra}
r="["; s=""
while IFS='|' read -r name format sha base limit next rest; do
  [ "$next" = yes ] || continue
  r="$r$s{\\"name\\":\\"$name\\",\\"result\\":\\"ok\\",\\"exitCode\\":0,\\"appliedAt\\":\\"2026-12-03T00:00:00Z\\"}"
  s=","
done < "$T"
sed -i 's/|yes|/|no|/' "$T"
understudy-report patch-report "$r]" > /dev/null
`;

/** Run deps whose standby boots `script` instead of the patch execution script the manager wrote. */
function withScript(deps: RunDeps, t: TestHost, standby: string, script: string): RunDeps {
  return {
    ...deps,
    crashPoint: async (point, when) => {
      if (point === 'boot-standby' && when === 'before')
        await t.host.driver.writeFile(
          getLc(t.app.db, standby),
          '/etc/rc.d/S05understudy-patch',
          script,
          0o755,
        );
    },
  };
}

async function buildArchive(dir: string): Promise<string> {
  const work = path.join(dir, 'archive');
  fs.mkdirSync(path.join(work, 'files/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'files/etc/understudy-motd'), 'patched by archive\n');
  const sha = (await exec(['sha256sum', 'etc/understudy-motd'], { cwd: path.join(work, 'files') })).stdout;
  fs.writeFileSync(path.join(work, 'manifest.after'), sha);
  const file = path.join(dir, 'motd.tar');
  await exec(['tar', '-C', work, '-cf', file, 'files', 'manifest.after']);
  return file;
}

async function buildDeb(dir: string): Promise<string> {
  const root = path.join(dir, 'deb');
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/share/understudy-demo'), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/share/understudy-demo/security-fix'), 'CVE-2026-0001 fixed\n');
  fs.writeFileSync(
    path.join(root, 'DEBIAN/control'),
    'Package: understudy-demo-fix\nVersion: 1.0.1\nArchitecture: all\nMaintainer: understudy tests <root@localhost>\nDescription: test security fix\n',
  );
  const file = path.join(dir, 'understudy-demo-fix_1.0.1_all.deb');
  await exec(['dpkg-deb', '--root-owner-group', '--build', root, file]);
  return file;
}

function assertUnverified(error: unknown, pattern: RegExp): void {
  assert.ok(error instanceof UnderstudyError, `expected RUN_PATCH_UNVERIFIED, got ${String(error)}`);
  assert.equal(error.code, 'RUN_PATCH_UNVERIFIED', error.message);
  assert.match(error.message, /reported .* applied, but its system disk says otherwise/);
  assert.match(error.message, pattern);
  assert.ok(error.hint.length > 0);
}

describe('finding 13 on the busybox image', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
  });
  after(async () => f?.dispose());

  test('finding 13: a standby that reports an archive patch ok without applying it is caught on its disk; LC1 keeps serving', async () => {
    const file = await buildArchive(f.t.stateDir);
    await f.addPatch('motd', 'archive', fs.readFileSync(file));
    const load = await f.load(100);
    const error = await startRun(
      { lc: 'lc1', skipScan: true },
      withScript(f.deps, f.t, 'lc2', lyingScript()),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    const report = await load.stop();
    assertUnverified(error, /motd: \/etc\/understudy-motd is missing/);
    const run = getRun(f.t.app.db, listRuns(f.t.app.db)[0]?.id ?? '');
    assert.equal(run.state, 'failed');
    assert.deepEqual(
      run.facts.patchResults?.map((p) => [p.name, p.result]),
      [['motd', 'ok']],
      'the standby did report ok',
    );
    assert.equal(run.steps.find((s) => s.name === 'check-standby')?.state, 'failed');
    assert.equal(run.steps.find((s) => s.name === 'switch')?.state, 'pending', 'no switch');
    assert.equal(report.summary.failed, 0, 'the service kept answering');
    assert.deepEqual(Object.keys(report.summary.byServedBy), ['lc1']);
    assert.equal((await f.get('/version')).servedBy, 'lc1');
    assert.equal(f.catalogue.lcStates({ patch: 'motd', lc: 'lc1' })[0]?.lastResult, 'failed');
    assert.equal(f.catalogue.lcStates({ patch: 'motd', lc: 'lc1' })[0]?.appliedAt, null);
    const standbyDisk = f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc2'), disk: 'system' });
    assert.ok(
      !fs.existsSync(path.join(standbyDisk, 'var/lib/understudy')),
      'the standby has its own disk back',
    );
    assert.equal(getLc(f.t.app.db, 'lc2').role, 'idle');
  });

  test('finding 13: the same archive patch applied honestly passes the check and the run switches', async () => {
    const run = await startRun({ lc: 'lc1', skipScan: true }, f.deps);
    assert.equal(run.state, 'switched', run.error ?? '');
    const check = run.steps.find((s) => s.name === 'check-standby')?.output as {
      verified: { name: string; outcome: string; detail: string }[];
    };
    assert.deepEqual(check.verified, [
      { name: 'motd', outcome: 'checked', detail: 'manifest.after, 1 file(s)' },
    ]);
    assert.equal((await f.get('/version')).servedBy, 'lc2');
  });
});

describe('finding 13 on the debian image (deb patches)', () => {
  let t: TestHost;
  let catalogue: Catalogue;
  before(async () => {
    t = await createTestHost({ images: ['busybox', 'debian'], poolSize: 4 * 1024 ** 3 });
    catalogue = createCatalogue({ db: t.app.db, patchesDir: patchesDirOf(t.stateDir) });
    await t.lc({ name: 'deb1', image: 'debian', addresses: [`${t.prefix}.10`], role: 'active', cpus: '0' });
    await t.lc({ name: 'deb2', image: 'debian', addresses: [`${t.prefix}.11`], cpus: '1' }, { start: false });
    const file = await buildDeb(t.stateDir);
    await catalogue.registerPatch({
      file,
      name: 'understudy-demo-fix',
      categories: ['security'],
      format: 'deb',
      sha256: (await sha256File(file)).sha256,
    });
  });
  after(async () => t?.dispose());

  for (const [lie, extra, pattern] of [
    [
      'reports the package installed and installs nothing',
      '',
      /understudy-demo-fix: the dpkg status does not list understudy-demo-fix/,
    ],
    [
      'forges the dpkg status but installs no file',
      `printf '\\nPackage: understudy-demo-fix\\nStatus: install ok installed\\nArchitecture: all\\nVersion: 1.0.1\\nDescription: forged\\n' >> /var/lib/dpkg/status`,
      /understudy-demo-fix: \/usr\/share\/understudy-demo\/security-fix is missing/,
    ],
  ] as const) {
    test(`finding 13: a standby that ${lie} is caught on its disk; the service stays on deb1`, async () => {
      catalogue.markNextRun('understudy-demo-fix', 'deb1', true);
      const deps = withScript({ db: t.app.db, host: t.host, catalogue }, t, 'deb2', lyingScript(extra));
      const error = await startRun({ lc: 'deb1', skipScan: true }, deps).then(
        () => undefined,
        (e: unknown) => e,
      );
      assertUnverified(error, pattern);
      const served = await fetch(`http://${t.prefix}.10/version`, { signal: AbortSignal.timeout(5000) });
      assert.equal(served.headers.get('x-served-by'), 'deb1');
      assert.equal(getRun(t.app.db, listRuns(t.app.db)[0]?.id ?? '').state, 'failed');
      assert.equal(getLc(t.app.db, 'deb1').role, 'active');
    });
  }
});
