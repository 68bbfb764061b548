/**
 * Bad input and faults in a patch run: each gives a clear error, the service stays on LC1 and answers,
 * and the standby is discarded (its own disks restored).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { UnderstudyError } from '../../../src/core/index.ts';
import { assetsDir } from '../../../src/images/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { getRun, listRuns, startRun, type RunOptions } from '../../../src/run/index.ts';
import { createRunFixture, type RunFixture } from './run-fixture.ts';

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

describe('patch run faults', () => {
  let f: RunFixture;
  before(async () => {
    f = await createRunFixture();
    // A marker only the standby's own system disk has: it must be back after every discarded run.
    fs.writeFileSync(
      path.join(
        f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc2'), disk: 'system' }),
        'root/standby-marker',
      ),
      'lc2 own disk',
    );
  });
  after(async () => f?.dispose());
  afterEach(() => {
    for (const p of f.catalogue.patchesForNextRun('lc1')) f.catalogue.markNextRun(p.name, 'lc1', false);
  });

  async function expectFailure(options: Partial<RunOptions>, code: string, pattern: RegExp): Promise<void> {
    const load = await f.load(100);
    const error = await startRun({ lc: 'lc1', skipScan: true, ...options }, f.deps).then(
      () => undefined,
      (e: unknown) => e,
    );
    const report = await load.stop();
    assert.ok(error instanceof UnderstudyError, `expected ${code}, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    assert.ok(error.hint.length > 0);
    assert.equal(report.summary.failed, 0, 'the service kept answering');
    assert.deepEqual(Object.keys(report.summary.byServedBy), ['lc1'], 'only lc1 served');
    const now = await f.get('/version');
    assert.equal(now.servedBy, 'lc1');
    assert.equal(now.version, '1.0.0');
    assert.equal(getLc(f.t.app.db, 'lc1').role, 'active');
    const standbyDisk = f.t.host.disks.mountpoint({ lc: getLc(f.t.app.db, 'lc2'), disk: 'system' });
    assert.equal(
      fs.readFileSync(path.join(standbyDisk, 'root/standby-marker'), 'utf8'),
      'lc2 own disk',
      'the standby got its own disk back',
    );
    assert.ok(
      !fs.readdirSync(path.dirname(standbyDisk)).some((n) => n.includes('.before-')),
      'no set-aside disk is left',
    );
    const run = listRuns(f.t.app.db)[0];
    if (run && code !== 'RUN_NOTHING_TO_DO') assert.equal(getRun(f.t.app.db, run.id).state, 'failed');
  }

  test('a patch that does not apply: result recorded, standby discarded, LC1 untouched', async () => {
    await f.addPatch(
      'bad-diff',
      'diff',
      '--- a/etc/nonexistent\n+++ b/etc/nonexistent\n@@ -1 +1 @@\n-old\n+new\n',
    );
    await expectFailure({}, 'RUN_PATCH_FAILED', /bad-diff \(exit 1\)/);
    const state = f.catalogue.lcStates({ patch: 'bad-diff', lc: 'lc1' })[0];
    assert.equal(state?.lastResult, 'failed');
    assert.equal(state?.appliedAt, null);
  });

  test('a script patch that breaks the service: the health check fails, no switch', async () => {
    await f.addPatch(
      'breaks-service',
      'script',
      "#!/bin/sh\nsed -i 's/^const VERSION = .*/&\\nprocess.exit(3);/' /opt/demo/server.mjs\n",
    );
    await expectFailure({ bootTimeoutMs: 60_000 }, 'RUN_STANDBY_UNHEALTHY', /fails its health check/);
  });

  test('the standby does not report in time: timeout, discarded', async () => {
    await f.addPatch('hangs', 'script', '#!/bin/sh\nsleep 60\n');
    await expectFailure(
      { bootTimeoutMs: 3000 },
      'RUN_STANDBY_TIMEOUT',
      /did not report its patch results within 3000 ms/,
    );
  });

  test('a stored patch file that no longer matches its sha256 is refused before use', async () => {
    await f.addPatch('tampered', 'script', '#!/bin/sh\ntrue\n');
    fs.appendFileSync(f.catalogue.getPatch('tampered').filePath, 'rm -rf /\n');
    await expectFailure({}, 'RUN_PATCH_CORRUPT', /"tampered".*no longer matches its sha256/);
  });

  test('a malicious file on the system disk stops the run before anything is copied', async () => {
    await f.addPatch('harmless', 'script', '#!/bin/sh\ntrue\n');
    await f.t.host.driver.writeFile(getLc(f.t.app.db, 'lc1'), '/tmp/dropper.com', EICAR);
    try {
      await expectFailure(
        { skipScan: false, scanDatabase: path.join(assetsDir, 'clamav/eicar-test.hdb') },
        'RUN_MALWARE_FOUND',
        /\/tmp\/dropper\.com \(Eicar-Test-Signature/,
      );
      const run = getRun(f.t.app.db, listRuns(f.t.app.db)[0]?.id ?? '');
      assert.equal(run.steps.find((s) => s.name === 'copy-system')?.state, 'pending', 'nothing was copied');
    } finally {
      await f.t.host.driver.exec('lc1', ['rm', '-f', '/tmp/dropper.com']);
    }
  });

  test('no patch marked, an unknown standby, no standby that covers the LC', async () => {
    await expectFailure({}, 'RUN_NOTHING_TO_DO', /No patch is marked/);
    await f.addPatch('p-standby', 'script', '#!/bin/sh\ntrue\n');
    await expectFailure({ standby: 'ghost' }, 'RUN_NO_STANDBY', /"ghost" cannot stand in/);
    await f.t.lc({ name: 'tiny', addresses: [`${f.t.prefix}.12`], memoryMb: 32 }, { start: false });
    await expectFailure({ standby: 'tiny' }, 'RUN_NO_STANDBY', /tiny: memory 32 MB < 128 MB/);
  });
});
