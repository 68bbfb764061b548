/**
 * The routes of the CLI commands that had none, against `serve` as a real process on a test host
 * (real LCs, a real signed apt repository over HTTP): `lc service set|show`, `lc role`, `lc reboot`,
 * `updates <lc> [--apply]`, `image remove`, `feed list|remove`, `token create|list|revoke`,
 * `disk copies|history`. Each answers what the CLI prints (read back through the CLI on the same
 * store), refuses bad input with the CLI's error code, needs a token (401) and, for a change, the
 * admin scope (403).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLc } from '../../../src/inventory/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';
import { AptRepo } from '../monitor/apt-repo.ts';
import { startHttpServer, type TestHttpServer } from '../monitor/fixtures.ts';
import { startServe, type ServeProcess } from './serve-fixture.ts';

interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
}

/** A Debian system's dpkg status as the LC's own file: dpkg itself and hello 1.0. */
const dpkgStatus = [
  'Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\nDescription: dpkg\n',
  'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\nDescription: hello\n',
].join('\n');

const webService = {
  name: 'web',
  pidFile: '/run/demo.pid',
  ports: [80],
  health: { kind: 'http', path: '/health' },
  drain: { kind: 'none' },
  data: ['/srv/data'],
};

describe('the API routes of lc service, lc role, lc reboot, updates, image remove, feed, token, disk', () => {
  let t: TestHost;
  let serve: ServeProcess;
  let repo: AptRepo;
  let server: TestHttpServer;
  /** A read-only operator's token, made through the CLI. */
  let reader: string;

  const cliJson = async <T>(args: string[], okCodes = [0]): Promise<T> =>
    JSON.parse((await t.cli(['--json', ...args], { okCodes })).stdout) as T;
  const cliError = async (args: string[]): Promise<string> =>
    (await cliJson<{ error: { code: string } }>(args, [1, 2])).error.code;
  /** Without a token → 401, with the read-only token → 403 for a change; both with the error body. */
  const assertGuarded = async (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    body?: unknown,
  ): Promise<void> => {
    const anonymous = await serve.api<ErrorBody>(method, url, body, { token: null });
    assert.equal(anonymous.status, 401, `${method} ${url} without a token`);
    assert.equal(anonymous.body.code, 'API_UNAUTHORIZED');
    if (method === 'GET') return;
    const readOnly = await serve.api<ErrorBody>(method, url, body, { token: reader });
    assert.equal(readOnly.status, 403, `${method} ${url} with a read-only token`);
    assert.equal(readOnly.body.code, 'API_FORBIDDEN');
  };

  before(async () => {
    t = await createTestHost();
    await t.lc({ name: 'web', addresses: [`${t.prefix}.21/24`] });
    await t.lc({ name: 'spare', addresses: [`${t.prefix}.22/24`] }, { start: false });
    await t.host.driver.writeFile(getLc(t.app.db, 'web'), '/var/lib/dpkg/status', dpkgStatus);
    repo = await new AptRepo('bookworm-security').init();
    await repo.addPackage({ name: 'hello', version: '1.1' });
    await repo.addPackage({ name: 'unrelated', version: '2.0' });
    await repo.publish();
    server = await startHttpServer(repo.root);
    for (const name of ['sec', 'old'])
      await t.cli([
        'feed',
        'add',
        name,
        '--kind',
        'apt',
        '--url',
        server.url,
        '--suite',
        'bookworm-security',
        '--component',
        'main',
        '--arch',
        'amd64',
        '--keyring',
        repo.keyring,
        '--fingerprint',
        repo.fingerprint,
      ]);
    // serve makes the first (admin) token only in a store that has none: the reader's comes after.
    serve = await startServe(t.stateDir);
    reader = (await cliJson<{ token: string }>(['token', 'create', 'rick', '--scope', 'read'])).token;
  });

  after(async () => {
    await serve?.stop();
    await server?.close();
    await repo?.cleanup();
    await t?.dispose();
  });

  test('services: PUT replaces, GET and lc service show agree; invalid definitions answer SERVICE_INVALID', async () => {
    const empty = await serve.api<{ services: unknown[] }>('GET', '/v1/lcs/web/services');
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.services, []);

    const set = await serve.api<{ services: Record<string, unknown>[] }>('PUT', '/v1/lcs/web/services', {
      services: [webService],
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    // The stored definition is complete: the defaults the CLI's flags get are filled in.
    assert.equal(set.body.services[0]?.cut, 'none');
    assert.deepEqual(set.body.services[0]?.hold, { kind: 'signal' });
    const shown = await cliJson<Record<string, unknown>[]>(['lc', 'service', 'show', 'web']);
    assert.deepEqual(shown, set.body.services, 'the CLI reads what the API stored');
    assert.deepEqual((await serve.api('GET', '/v1/lcs/web/services')).body.services, shown);

    // Neither unit nor pid file: refused by the inventory's own check, nothing changed.
    const invalid = await serve.api<ErrorBody>('PUT', '/v1/lcs/web/services', {
      services: [{ name: 'web', ports: [80] }],
    });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.code, 'SERVICE_INVALID');
    assert.match(invalid.body.message, /exactly one of unit \(systemd\) or pidFile/);
    assert.equal(
      await cliError(['lc', 'service', 'set', 'web', '--service-pid-file', 'relative/pid']),
      'SERVICE_INVALID',
      'the CLI refuses a bad definition with the same code',
    );
    assert.deepEqual(await cliJson(['lc', 'service', 'show', 'web']), shown, 'nothing changed');
    const notAList = await serve.api<ErrorBody>('PUT', '/v1/lcs/web/services', { services: 'web' });
    assert.equal(notAList.status, 400);
    assert.equal(notAList.body.code, 'INVALID_ARGUMENT');
    assert.match(notAList.body.message, /^body\.services/);
    const missing = await serve.api<ErrorBody>('GET', '/v1/lcs/nope/services');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'LC_NOT_FOUND');
    assert.equal(await cliError(['lc', 'service', 'show', 'nope']), 'LC_NOT_FOUND');
    // POST /v1/lcs takes the driver and the services as lc create's flags do.
    const created = await serve.api<{ lc: { name: string; driver: string; services: unknown[] } }>(
      'POST',
      '/v1/lcs',
      {
        name: 'third',
        image: 'busybox',
        driver: 'namespace',
        services: [webService],
        systemDiskMb: 256,
        appDiskMb: 0,
      },
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(await cliJson(['lc', 'service', 'show', 'third']), shown);
    const noDriver = await serve.api<ErrorBody>('POST', '/v1/lcs', {
      name: 'fourth',
      image: 'busybox',
      driver: 'vmware',
      systemDiskMb: 256,
      appDiskMb: 0,
    });
    assert.equal(noDriver.status, 400, JSON.stringify(noDriver.body));
    assert.equal(noDriver.body.code, 'DRIVER_UNKNOWN');
    const badService = await serve.api<ErrorBody>('POST', '/v1/lcs', {
      name: 'fourth',
      image: 'busybox',
      services: [{ name: 'web', ports: [80] }],
      systemDiskMb: 256,
      appDiskMb: 0,
    });
    assert.equal(badService.status, 400, JSON.stringify(badService.body));
    assert.equal(badService.body.code, 'SERVICE_INVALID');
    assert.equal((await serve.api('DELETE', '/v1/lcs/third')).status, 200);
    assert.ok(!(await cliJson<{ name: string }[]>(['lc', 'list'])).some((l) => l.name.startsWith('fourth')));
    await assertGuarded('GET', '/v1/lcs/web/services');
    await assertGuarded('PUT', '/v1/lcs/web/services', { services: [] });

    const audit = await serve.api<{ entries: { action: string; target: string; operator: string }[] }>(
      'GET',
      '/v1/audit',
    );
    assert.ok(
      audit.body.entries.some(
        (e) => e.action === 'PUT /v1/lcs/:name/services' && e.target === 'web' && e.operator === 'root',
      ),
      'the change is audited',
    );
  });

  test('updates: GET plans from the LC’s own dpkg status, POST registers the verified .deb for the next run', async () => {
    const plan = await serve.api<{
      updates: { package: string; installed: string; candidate: string; feed: string }[];
      patches: unknown[];
    }>('GET', '/v1/lcs/web/updates?feed=sec');
    assert.equal(plan.status, 200, JSON.stringify(plan.body));
    assert.deepEqual(
      plan.body.updates.map((u) => [u.package, u.installed, u.candidate, u.feed]),
      [['hello', '1.0', '1.1', 'sec']],
    );
    assert.deepEqual(plan.body.patches, [], 'a GET registers nothing');
    const cliPlan = await cliJson<{ updates: unknown[] }>(['updates', 'web', '--feed', 'sec']);
    assert.deepEqual(cliPlan.updates, plan.body.updates, 'the same plan as the CLI');
    assert.deepEqual((await cliJson<{ patches: unknown[] }>(['patch', 'list'])).patches, []);

    // Errors are the CLI's: an unknown feed, an LC without a dpkg status, an unknown LC.
    for (const [url, status, code, args] of [
      ['/v1/lcs/web/updates?feed=nope', 404, 'FEED_NOT_FOUND', ['updates', 'web', '--feed', 'nope']],
      ['/v1/lcs/spare/updates', 409, 'DPKG_STATUS_INVALID', ['updates', 'spare']],
      ['/v1/lcs/nope/updates', 404, 'LC_NOT_FOUND', ['updates', 'nope']],
    ] as const) {
      const res = await serve.api<ErrorBody>('GET', url);
      assert.equal(res.status, status, `${url}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, code);
      assert.equal(await cliError([...args]), code, args.join(' '));
    }
    const bad = await serve.api<ErrorBody>('POST', '/v1/lcs/web/updates', { feeds: 'sec' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^body\.feeds/);
    await assertGuarded('GET', '/v1/lcs/web/updates');
    await assertGuarded('POST', '/v1/lcs/web/updates', { feeds: ['sec'] });
    assert.deepEqual((await cliJson<{ patches: unknown[] }>(['patch', 'list'])).patches, []);

    const applied = await serve.api<{ patches: { name: string; sha256: string; format: string }[] }>(
      'POST',
      '/v1/lcs/web/updates',
      { feeds: ['sec'] },
    );
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const deb = path.join(repo.root, 'pool/main/hello_1.1_amd64.deb');
    const sum = crypto.createHash('sha256').update(fs.readFileSync(deb)).digest('hex');
    assert.deepEqual(
      applied.body.patches.map((p) => [p.sha256, p.format]),
      [[sum, 'deb']],
      'exactly the repository’s .deb, checked against the signed index',
    );
    const listed = await cliJson<{ patches: { name: string; state: { applyNextRun: boolean } | null }[] }>([
      'patch',
      'list',
      '--lc',
      'web',
    ]);
    assert.deepEqual(
      listed.patches.filter((p) => p.state?.applyNextRun).map((p) => p.name),
      applied.body.patches.map((p) => p.name),
      'marked for web’s next run',
    );
  });

  test('role and reboot: as lc role and lc reboot', async () => {
    const role = await serve.api<{ role: string }>('POST', '/v1/lcs/spare/role', { role: 'standby' });
    assert.equal(role.status, 200, JSON.stringify(role.body));
    const lcs = await cliJson<{ name: string; role: string }[]>(['lc', 'list']);
    assert.equal(lcs.find((l) => l.name === 'spare')?.role, 'standby');
    const badRole = await serve.api<ErrorBody>('POST', '/v1/lcs/spare/role', { role: 'boss' });
    assert.equal(badRole.status, 400);
    assert.match(badRole.body.message, /^body\.role/);
    assert.equal(await cliError(['lc', 'role', 'spare', 'boss']), 'INVALID_ARGUMENT');
    const noLc = await serve.api<ErrorBody>('POST', '/v1/lcs/nope/role', { role: 'idle' });
    assert.equal(noLc.status, 404);
    assert.equal(noLc.body.code, 'LC_NOT_FOUND');
    await assertGuarded('POST', '/v1/lcs/spare/role', { role: 'idle' });

    const before = (await serve.api<{ lc: { status: { reboots: number } } }>('GET', '/v1/lcs/web')).body.lc;
    const rebooted = await serve.api<{ status: { state: string; reboots: number } }>(
      'POST',
      '/v1/lcs/web/reboot',
    );
    assert.equal(rebooted.status, 200, JSON.stringify(rebooted.body));
    assert.equal(rebooted.body.status.state, 'running');
    assert.equal(rebooted.body.status.reboots, before.status.reboots + 1, 'the LC did restart');
    const noReboot = await serve.api<ErrorBody>('POST', '/v1/lcs/nope/reboot');
    assert.equal(noReboot.status, 404);
    assert.equal(noReboot.body.code, 'LC_NOT_FOUND');
    await assertGuarded('POST', '/v1/lcs/web/reboot');
  });

  test('images, feeds, tokens and disk copies: remove, list, create, revoke as the CLI', async () => {
    await t.cli(['image', 'build', 'busybox', '--name', 'spare-image']);
    await assertGuarded('DELETE', '/v1/images/spare-image');
    const removed = await serve.api('DELETE', '/v1/images/spare-image');
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    const images = await cliJson<{ name: string }[]>(['image', 'list']);
    assert.ok(!images.some((i) => i.name === 'spare-image') && images.some((i) => i.name === 'busybox'));
    const again = await serve.api<ErrorBody>('DELETE', '/v1/images/spare-image');
    assert.equal(again.status, 404);
    assert.equal(again.body.code, 'IMAGE_NOT_FOUND');
    assert.equal(await cliError(['image', 'remove', 'spare-image']), 'IMAGE_NOT_FOUND');

    const feeds = await serve.api<{ feeds: { name: string; url: string }[] }>('GET', '/v1/feeds');
    assert.deepEqual(
      feeds.body.feeds,
      (await cliJson<{ feeds: unknown[] }>(['feed', 'list'])).feeds,
      'the same list as feed list',
    );
    await assertGuarded('GET', '/v1/feeds');
    await assertGuarded('DELETE', '/v1/feeds/old');
    assert.equal((await serve.api('DELETE', '/v1/feeds/old')).status, 200);
    assert.deepEqual(
      (await cliJson<{ feeds: { name: string }[] }>(['feed', 'list'])).feeds.map((f) => f.name),
      ['sec'],
    );
    const noFeed = await serve.api<ErrorBody>('DELETE', '/v1/feeds/old');
    assert.equal(noFeed.status, 404);
    assert.equal(noFeed.body.code, 'FEED_NOT_FOUND');

    await assertGuarded('GET', '/v1/tokens');
    await assertGuarded('POST', '/v1/tokens', { operator: 'mallory', scope: 'admin' });
    const badScope = await serve.api<ErrorBody>('POST', '/v1/tokens', { operator: 'ann', scope: 'root' });
    assert.equal(badScope.status, 400);
    assert.match(badScope.body.message, /^body\.scope/);
    const badName = await serve.api<ErrorBody>('POST', '/v1/tokens', { operator: 'a b' });
    assert.equal(badName.status, 400);
    assert.match(badName.body.message, /not a valid operator name/);
    const made = await serve.api<{ token: string; id: string; scope: string }>('POST', '/v1/tokens', {
      operator: 'ann',
    });
    assert.equal(made.status, 201);
    assert.equal(made.body.scope, 'read');
    const asAnn = await serve.api('GET', '/v1/lcs', undefined, { token: made.body.token });
    assert.equal(asAnn.status, 200, 'the new token works');
    const tokens = await serve.api<{ tokens: { id: string; operator: string }[] }>('GET', '/v1/tokens');
    assert.ok(!JSON.stringify(tokens.body).includes(made.body.token), 'a listing never shows a token');
    assert.deepEqual(
      tokens.body.tokens.map((x) => x.id).sort(),
      (await cliJson<{ id: string }[]>(['token', 'list'])).map((x) => x.id).sort(),
    );
    assert.equal((await serve.api('DELETE', `/v1/tokens/${made.body.id}`)).status, 200);
    const revoked = await serve.api<ErrorBody>('GET', '/v1/lcs', undefined, { token: made.body.token });
    assert.equal(revoked.status, 401, 'a revoked token is refused at once');
    const noToken = await serve.api<ErrorBody>('DELETE', '/v1/tokens/000000000000');
    assert.equal(noToken.status, 404);
    assert.equal(noToken.body.code, 'API_TOKEN_NOT_FOUND');

    // A real live copy of web's application disk onto the stopped spare, made by the CLI.
    const copied = await cliJson<{ jobId: string }>(['disk', 'copy', 'web', 'app', '--to', 'spare']);
    const copies = await serve.api<{ copies: { id: string; state: string }[] }>('GET', '/v1/disk-copies');
    assert.equal(copies.status, 200);
    assert.deepEqual(copies.body.copies, await cliJson(['disk', 'copies']), 'the same list as disk copies');
    assert.equal(copies.body.copies[0]?.id, copied.jobId);
    assert.equal(copies.body.copies[0]?.state, 'succeeded');
    const one = await serve.api<{ copy: unknown; records: unknown[] }>(
      'GET',
      `/v1/disk-copies/${copied.jobId}?limit=10`,
    );
    assert.equal(one.status, 200);
    const history = await cliJson<{ job: unknown; records: unknown[] }>([
      'disk',
      'history',
      copied.jobId,
      '--limit',
      '10',
    ]);
    assert.deepEqual([one.body.copy, one.body.records], [history.job, history.records]);
    await assertGuarded('GET', '/v1/disk-copies');
    const noCopy = await serve.api<ErrorBody>('GET', '/v1/disk-copies/nope');
    assert.equal(noCopy.status, 404);
    assert.equal(noCopy.body.code, 'DISK_COPY_NOT_FOUND');
    assert.equal(await cliError(['disk', 'history', 'nope']), 'DISK_COPY_NOT_FOUND');
    const badLimit = await serve.api<ErrorBody>('GET', '/v1/disk-copies/nope?limit=-1');
    assert.equal(badLimit.status, 400);
    assert.match(badLimit.body.message, /^query\.limit/);
  });
});
