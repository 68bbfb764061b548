/**
 * The patch run of a real server: two unprivileged LXC LCs booting systemd from a Debian bookworm image
 * with unmodified Debian nginx from the main archive; LC1 serves under load from a client namespace; the
 * run upgrades nginx and nginx-common together, as one apt transaction on the standby, to the version of
 * the security archive (real .debs fetched with `apt-get download`), reboots and checks the standby, and
 * switches with zero failed requests. LC1 is left as it was. Before that, four faults on the standby
 * (a dependency that cannot be satisfied, a conffile another package owns, a failing maintainer script
 * of the real nginx-common, nginx not coming up after the reboot) each end the run with an error that
 * names the cause and what to do, while the service stays on LC1 and nothing of the failed transaction
 * is left on the standby's disks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256File, type Catalogue } from '../../../src/catalogue/index.ts';
import { exec } from '../../../src/core/index.ts';
import { startClientLoad } from '../../../src/demo/index.ts';
import { getLc } from '../../../src/inventory/index.ts';
import { startRun } from '../../../src/run/index.ts';
import type { TestClient, TestHost } from '../../helpers/host-fixture.ts';
import { downloadDeb, repackDeb, securityUpdate, type PatchSet } from '../lxc/debs.ts';
import { createNginxRunBed, defaultSite, nginxSet, type NginxRunBed } from '../lxc/nginx-run-bed.ts';

describe('patch run of real Debian nginx on LXC', () => {
  let t: TestHost;
  let client: TestClient;
  let catalogue: Catalogue;
  let update: PatchSet;
  let bed: NginxRunBed;
  before(async () => {
    bed = await createNginxRunBed();
    ({ t, client, catalogue } = bed);
  });
  after(async () => bed?.dispose());

  /** A small real .deb built here (for the faults). */
  const buildDeb = async (name: string, control: string, files: Record<string, string>): Promise<string> => {
    const root = path.join(t.stateDir, `deb-${name}`);
    fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
    fs.writeFileSync(
      path.join(root, 'DEBIAN/control'),
      `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: understudy tests <root@localhost>\nDescription: fault test\n${control}`,
    );
    for (const [file, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), content, { mode: file.startsWith('DEBIAN/') ? 0o755 : 0o644 });
    }
    const out = path.join(t.stateDir, `${name}_1.0_all.deb`);
    await exec(['dpkg-deb', '--root-owner-group', '--build', root, out]);
    await catalogue.registerPatch({
      file: out,
      name,
      categories: ['security'],
      format: 'deb',
      sha256: (await sha256File(out)).sha256,
    });
    return name;
  };

  /** The version of `pkg` in a dpkg status file's text, or undefined when it is not installed. */
  const statusVersion = (status: string, pkg: string): string | undefined =>
    status
      .split('\n\n')
      .find((stanza) => stanza.split('\n').includes(`Package: ${pkg}`))
      ?.match(/^Version: (.+)$/m)?.[1];

  /**
   * A run of `patches` that must fail with `code` and a message matching `pattern`, with a hint that says
   * what to do; LC1 keeps serving and the standby's system disk is back as it was (no package of the
   * failed transaction, nginx at the image's version, no patch table).
   */
  const failingRun = async (
    patches: string[],
    code: string,
    pattern: RegExp,
    hint = /understudy run show/,
  ): Promise<void> => {
    const run = await startRun(
      { lc: 'lc1', patches, skipScan: true, bootTimeoutMs: 240_000 },
      { db: t.app.db, host: t.host, catalogue },
    ).catch((error: unknown) => error as Error & { code?: string; hint?: string });
    assert.ok(run instanceof Error, 'the run failed');
    assert.equal(run.code, code, run.message);
    assert.match(run.message, pattern);
    assert.match(run.hint ?? '', hint);
    console.log(`# ${run.code}: ${run.message}\n#   hint: ${run.hint}`);
    const now = await client.get(`http://${t.prefix}.10/`);
    assert.equal(now.status, 200);
    assert.equal(now.servedBy, 'lc1', 'the service stayed on lc1');
    assert.equal(getLc(t.app.db, 'lc1').role, 'active');
    assert.equal((await t.host.driver.status('lc2')).state, 'stopped', 'the standby was discarded');
    const lc2 = getLc(t.app.db, 'lc2');
    const status = (await t.host.driver.readFile(lc2, '/var/lib/dpkg/status')).toString();
    const image = (await t.host.driver.readFile(getLc(t.app.db, 'lc1'), '/var/lib/dpkg/status')).toString();
    for (const p of nginxSet) assert.equal(statusVersion(status, p), statusVersion(image, p), `${p} on lc2`);
    assert.doesNotMatch(status, /^Package: us-fault-/m, 'no package of the failed run on lc2');
    await assert.rejects(
      t.host.driver.readFile(lc2, '/var/lib/understudy/patch-table'),
      'no patch table left on lc2',
    );
  };

  /**
   * nginx and nginx-common, the real packages of the image's version, repacked one version up, with
   * `edit` applied to nginx-common's tree; registered under `prefix`-nginx and `prefix`-nginx-common.
   */
  const brokenNginxSet = async (prefix: string, edit: (root: string) => void): Promise<string[]> => {
    const installed = await dpkgVersion('lc1', 'nginx');
    const version = `${installed}+${prefix.replace(/[^a-z0-9]/g, '')}1`;
    const outDir = fs.mkdtempSync(path.join(t.stateDir, `repack-${prefix}-`));
    const names: string[] = [];
    for (const pkg of nginxSet) {
      const file = await repackDeb(await downloadDeb(pkg, installed), version, nginxSet, {
        outDir,
        ...(pkg === 'nginx-common' ? { edit } : {}),
      });
      const name = `${prefix}-${pkg}`;
      await catalogue.registerPatch({
        file,
        name,
        categories: ['security'],
        format: 'deb',
        sha256: (await sha256File(file)).sha256,
      });
      names.push(name);
    }
    console.log(`# the real ${nginxSet.join(' + ')} ${installed}, repacked as ${version} (${prefix})`);
    return names;
  };

  test('a dependency that cannot be satisfied: the transaction fails on the standby, the service stays on LC1', async () => {
    const name = await buildDeb('us-fault-dep', 'Depends: understudy-no-such-package (>= 1)\n', {
      'usr/share/doc/us-fault-dep/README': 'x\n',
    });
    await failingRun(
      [name],
      'RUN_PATCH_FAILED',
      /us-fault-dep \(exit 100\): us-fault-dep : Depends: understudy-no-such-package \(>= 1\) but it is not installable/,
    );
  });

  test('a conffile conflict: nginx-common ships a configuration file another package owns; named, the service stays on LC1', async () => {
    // A conffile of base-files (in every Debian system), e.g. /etc/debian_version.
    const owned =
      (await t.host.driver.exec('lc1', ['dpkg-query', '-W', '-f', '${Conffiles}', 'base-files'])).stdout
        .trim()
        .split('\n')[0]
        ?.trim()
        .split(' ')[0] ?? '';
    assert.ok(owned.startsWith('/etc/'), `a conffile of base-files: ${owned}`);
    const names = await brokenNginxSet('us-conffile', (root) => {
      fs.mkdirSync(path.dirname(path.join(root, owned)), { recursive: true });
      fs.writeFileSync(path.join(root, owned), 'nginx-common claims this file\n');
      fs.appendFileSync(path.join(root, 'DEBIAN/conffiles'), `${owned}\n`);
    });
    const quoted = owned.replace(/[/.]/g, (c) => `\\${c}`);
    await failingRun(
      names,
      'RUN_PATCH_FAILED',
      new RegExp(
        `us-conffile-nginx-common \\(exit \\d+\\): .*trying to overwrite '${quoted}', which is also in package base-files`,
      ),
    );
  });

  test('a maintainer script that fails on the standby: the real nginx-common postinst exits 1; named, the service stays on LC1', async () => {
    const names = await brokenNginxSet('us-postinst', (root) => {
      const postinst = path.join(root, 'DEBIAN/postinst');
      const [shebang, ...rest] = fs.readFileSync(postinst, 'utf8').split('\n');
      fs.writeFileSync(
        postinst,
        [shebang, 'echo "postinst of nginx-common fails on purpose" >&2', 'exit 1', ...rest].join('\n'),
      );
    });
    await failingRun(
      names,
      'RUN_PATCH_FAILED',
      /us-postinst-nginx-common \(exit \d+\): .*nginx-common package post-installation script subprocess returned error exit status 1/,
    );
  });

  test('a unit that does not come up after the reboot: the check (709) names it, the service stays on LC1', async () => {
    const name = await buildDeb('us-fault-conf', '', {
      'etc/nginx/conf.d/understudy-broken.conf': 'this_is_not_an_nginx_directive on;\n',
    });
    await failingRun(
      [name],
      'RUN_STANDBY_UNHEALTHY',
      /nginx\.service.*not running after the reboot: (failed|inactive).*unknown directive "this_is_not_an_nginx_directive"/s,
    );
  });

  const dpkgVersion = async (lc: string, pkg: string): Promise<string> =>
    (await t.host.driver.exec(lc, ['dpkg-query', '-W', '-f', '${Version}', pkg])).stdout;

  test('nginx + nginx-common move to the security version as one transaction, under load, with 0 failed requests', async () => {
    const installed = await dpkgVersion('lc1', 'nginx');
    update = await securityUpdate(nginxSet, installed);
    if (update.repacked)
      console.log(
        `# the archives have no nginx newer than ${installed}: the real package is repacked as ${update.to}`,
      );
    else
      console.log(
        `# nginx ${update.from} (bookworm main) -> ${update.to} (from the archives, apt-get download)`,
      );
    for (const [i, file] of update.files.entries()) {
      const name = nginxSet[i] ?? '';
      await t.cli(['patch', 'add', file, '--name', name, '--format', 'deb', '--category', 'security']);
      await t.cli(['patch', 'mark', name, '--lc', 'lc1', '--next-run', 'on']);
    }
    const before = await client.get(`http://${t.prefix}.10/`);
    assert.equal(before.status, 200);
    assert.equal(before.servedBy, 'lc1');

    const load = await startClientLoad({
      netns: client.netns,
      url: `http://${t.prefix}.10/`,
      rate: 300,
      maxDurationS: 400,
      mix: 'newconn=0.5,keepalive=0.5',
    });
    const report = await (async () => {
      try {
        return await startRun(
          { lc: 'lc1', skipScan: true, bootTimeoutMs: 240_000 },
          { db: t.app.db, host: t.host, catalogue },
        );
      } finally {
        await new Promise((r) => setTimeout(r, 1000));
      }
    })().then(
      async (run) => ({ run, ...(await load.stop()) }),
      async (error: unknown) => {
        await load.stop();
        throw error;
      },
    );
    const { run } = report;
    console.log(
      `# ${report.summary.total} requests, ${report.summary.failed} failed, served by ${JSON.stringify(report.summary.byServedBy)}; latency max ${report.summary.latency.max} ms`,
    );
    for (const s of run.steps) console.log(`#   ${s.name} ${((s.durationMs ?? 0) / 1000).toFixed(2)} s`);

    assert.equal(run.state, 'switched', run.error ?? '');
    assert.equal(report.summary.failed, 0, `failed requests: ${JSON.stringify(report.summary.byOutcome)}`);
    assert.ok((report.summary.byServedBy.lc1 ?? 0) > 0 && (report.summary.byServedBy.lc2 ?? 0) > 0);

    // The standby's report: per package, old and new version, the tool, the configuration file kept.
    const results = run.facts.patchResults ?? [];
    assert.deepEqual(
      results.map((r) => [r.name, r.result, r.deb?.oldVersion, r.deb?.newVersion, r.deb?.tool]),
      nginxSet.map((p) => [p, 'ok', update.from, update.to, 'apt-get']),
    );
    const common = results.find((r) => r.name === 'nginx-common');
    assert.ok(common?.deb?.conffilesKept.includes(defaultSite), JSON.stringify(common?.deb));
    assert.match(common?.output ?? '', /apt|Unpacking|Setting up/);
    // The check of the standby (709) found both packages at the new version in its dpkg status.
    const checked = run.steps.find((s) => s.name === 'check-standby')?.output as {
      verified: { name: string; outcome: string; detail: string }[];
      unit: string;
    };
    assert.equal(checked.unit, 'active');
    assert.deepEqual(
      checked.verified.map((v) => [v.name, v.outcome, v.detail.split(',')[0]]),
      nginxSet.map((p) => [p, 'checked', `${p} ${update.to} installed`]),
    );

    // The new version runs on the serving LC, with the administrator's configuration.
    const now = await client.get(`http://${t.prefix}.10/`);
    assert.equal(now.status, 200);
    assert.equal(now.servedBy, 'lc2');
    for (const p of nginxSet) assert.equal(await dpkgVersion('lc2', p), update.to);
    assert.equal(
      (await t.host.driver.exec('lc2', ['systemctl', 'is-active', 'nginx'])).stdout.trim(),
      'active',
    );
    const pid = (
      await t.host.driver.exec('lc2', ['systemctl', 'show', '-p', 'MainPID', '--value', 'nginx'])
    ).stdout.trim();
    const exe = await t.host.driver.exec('lc2', ['readlink', `/proc/${pid}/exe`]);
    assert.equal(exe.stdout.trim(), '/usr/sbin/nginx', 'the running nginx is the installed binary');
    assert.equal((await t.host.driver.status('lc2')).reboots, 1, 'the standby was rebooted (708)');
    assert.deepEqual(getLc(t.app.db, 'lc2').services, getLc(t.app.db, 'lc1').services);
    assert.equal(getLc(t.app.db, 'lc2').role, 'active');

    // LC1 is untouched: same packages, nginx still running, no patch files, its configuration as it was.
    for (const p of nginxSet) assert.equal(await dpkgVersion('lc1', p), update.from);
    assert.equal(
      (await t.host.driver.exec('lc1', ['systemctl', 'is-active', 'nginx'])).stdout.trim(),
      'active',
    );
    const lc1Files = await t.host.driver.exec('lc1', ['ls', '/var/lib/understudy'], { okCodes: [0, 2] });
    assert.equal(lc1Files.stdout.trim(), '', 'no patch table or patches on lc1');
    assert.match(
      (await t.host.driver.readFile(getLc(t.app.db, 'lc1'), defaultSite)).toString(),
      /X-Served-By/,
    );
  });
});
