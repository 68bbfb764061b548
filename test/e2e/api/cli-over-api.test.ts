/**
 * Every CLI command that reads or changes the host, run with `--api` against `serve` as a real
 * process on a test host (real LCs, real pools, a real disk copy): each result is the daemon's and
 * is checked against the daemon's state, and the CLI never opens a store itself — its own state dir
 * (`--state-dir`, an empty directory) stays empty. The commands that cannot go through `--api`
 * refuse with API_UNSUPPORTED and say why.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec, type ExecResult } from '../../../src/core/index.ts';
import { readMounts } from '../../../src/host/index.ts';
import { createTestHost, repoRoot, type TestHost } from '../../helpers/host-fixture.ts';
import { startServe, type ServeProcess } from './serve-fixture.ts';

interface Failure {
  error: { code: string; message: string };
}

describe('the CLI through serve (--api): every command that reads or changes the host', () => {
  let t: TestHost;
  let serve: ServeProcess;
  /** The CLI's own state dir: a store opened by the CLI would appear here. */
  let cliDir: string;
  let work: string;

  /** `understudy --api … --json <args>` with an empty state dir of its own. */
  const remote = (args: string[], okCodes = [0]): Promise<ExecResult> => plain(['--json', ...args], okCodes);
  /** `understudy --api … <args>`: what a person sees (stderr is not a terminal here). */
  const plain = (args: string[], okCodes = [0]): Promise<ExecResult> =>
    exec(
      [
        'node',
        '--import',
        'tsx',
        path.join(repoRoot, 'src/cli/entry.ts'),
        '--state-dir',
        cliDir,
        '--api',
        serve.base,
        '--token',
        serve.token,
        ...args,
      ],
      { cwd: repoRoot, okCodes, timeoutMs: 180_000 },
    );
  const json = async <T>(args: string[]): Promise<T> => {
    const out = await remote(args);
    return JSON.parse(out.stdout) as T;
  };
  const failure = async (args: string[]): Promise<Failure['error']> =>
    (JSON.parse((await remote(args, [1, 2])).stdout) as Failure).error;
  /** The same command on the store directly (no --api), for the error it gives. */
  const localError = async (args: string[]): Promise<string> =>
    (JSON.parse((await t.cli(['--json', ...args], { okCodes: [1, 2] })).stdout) as Failure).error.code;

  before(async () => {
    t = await createTestHost();
    await t.lc({ name: 'web', addresses: [`${t.prefix}.21/24`] });
    await t.lc({ name: 'spare', addresses: [`${t.prefix}.22/24`] }, { start: false });
    serve = await startServe(t.stateDir);
    cliDir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-cli-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-cli-work-'));
  });

  after(async () => {
    await serve?.stop();
    await t?.dispose();
    if (cliDir) fs.rmSync(cliDir, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('host status and pool-add', async () => {
    const status = await json<{ initialised: boolean; pools: { name: string; mountpoint: string }[] }>([
      'host',
      'status',
    ]);
    assert.equal(status.initialised, true);
    assert.deepEqual(
      status.pools.map((p) => p.name),
      ['main'],
    );
    const pool = await json<{ name: string; mountpoint: string }>([
      'host',
      'pool-add',
      'extra',
      '--size',
      '512M',
    ]);
    assert.equal(pool.name, 'extra');
    assert.ok(fs.statSync(pool.mountpoint).isDirectory(), 'the daemon mounted the pool');
    // Both pools' loop devices read and write their images with direct I/O (attachLoop).
    for (const { name, mountpoint } of [...status.pools, pool]) {
      const device = readMounts().find((m) => m.target === mountpoint)?.source;
      assert.match(device ?? '', /^\/dev\/loop\d+$/, `pool ${name} is mounted from a loop device`);
      const dio = fs.readFileSync(`/sys/block/${path.basename(device!)}/loop/dio`, 'utf8').trim();
      assert.equal(dio, '1', `pool ${name}'s loop device does direct I/O`);
    }
    const host = await serve.api<{ pools: { name: string }[] }>('GET', '/v1/host');
    assert.deepEqual(host.body.pools.map((p) => p.name).sort(), ['extra', 'main']);
  });

  test('image list, import and remove', async () => {
    const images = await json<{ name: string }[]>(['image', 'list']);
    assert.ok(images.some((i) => i.name === 'busybox'));
    const rootfs = path.join(work, 'rootfs');
    for (const dir of ['etc', 'usr/bin']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'etc', 'hostname'), 'imported\n');
    const imported = await json<{ name: string }>(['image', 'import', rootfs, '--name', 'imported']);
    assert.equal(imported.name, 'imported');
    const listed = await serve.api<{ images: { name: string }[] }>('GET', '/v1/images');
    assert.ok(listed.body.images.some((i) => i.name === 'imported'));
    assert.deepEqual(await json(['image', 'remove', 'imported']), { removed: 'imported' });
    const after = await serve.api<{ images: { name: string }[] }>('GET', '/v1/images');
    assert.ok(!after.body.images.some((i) => i.name === 'imported'));
  });

  test('lc create, list, show, start, exec, nic add|remove, reboot, role, service, standby-for, stop, destroy', async () => {
    const created = await json<{ name: string; status: { state: string } }>([
      'lc',
      'create',
      'api1',
      '--image',
      'busybox',
      '--driver',
      'namespace',
      '--memory',
      '64',
      '--system-disk',
      '256',
      '--app-disk',
      '0',
      '--address',
      `${t.prefix}.31/24`,
      '--start',
    ]);
    assert.equal(created.status.state, 'running');
    const list = await json<{ name: string; status: { state: string } }[]>(['lc', 'list']);
    assert.deepEqual(list.map((l) => l.name).sort(), ['api1', 'spare', 'web']);
    const shown = await json<{ name: string; status: { state: string }; memoryMb: number }>([
      'lc',
      'show',
      'api1',
    ]);
    assert.equal(shown.memoryMb, 64);
    assert.equal(shown.status.state, 'running');

    // exec: the command's output and exit code come back, and the CLI exits with that code.
    const ran = await remote(
      ['lc', 'exec', 'api1', '--', 'sh', '-c', 'cat /etc/hostname; echo oops >&2; exit 3'],
      [3],
    );
    assert.equal(ran.exitCode, 3);
    const result = JSON.parse(ran.stdout) as { exitCode: number; stdout: string; stderr: string };
    assert.equal(result.exitCode, 3);
    assert.equal(result.stderr, 'oops\n');
    assert.ok(result.stdout.length > 0);

    const nic = await json<{ name: string; addresses: string[] }>([
      'lc',
      'nic',
      'add',
      'api1',
      '--address',
      `${t.prefix}.41/24`,
    ]);
    assert.equal(nic.name, 'eth1');
    const addrs = await json<{ stdout: string }>([
      'lc',
      'exec',
      'api1',
      '--',
      'ip',
      '-o',
      'addr',
      'show',
      'eth1',
    ]);
    assert.match(addrs.stdout, new RegExp(`${t.prefix.replaceAll('.', '\\.')}\\.41/24`));
    assert.deepEqual(await json(['lc', 'nic', 'remove', 'api1', 'eth1']), { lc: 'api1', removed: 'eth1' });
    const lc = await serve.api<{ lc: { nics: { name: string }[] } }>('GET', '/v1/lcs/api1');
    assert.deepEqual(
      lc.body.lc.nics.map((n) => n.name),
      ['eth0'],
    );

    const before = shown as unknown as { status: { reboots: number } };
    const rebooted = await json<{ state: string; reboots: number }>(['lc', 'reboot', 'api1']);
    assert.equal(rebooted.state, 'running');
    assert.equal(rebooted.reboots, before.status.reboots + 1);

    assert.deepEqual(await json(['lc', 'role', 'api1', 'standby']), { name: 'api1', role: 'standby' });
    const service = await json<{ name: string; pidFile: string }>([
      'lc',
      'service',
      'set',
      'api1',
      '--service-pid-file',
      '/run/demo.pid',
      '--service-name',
      'web',
    ]);
    assert.equal(service.pidFile, '/run/demo.pid');
    const services = await json<{ name: string }[]>(['lc', 'service', 'show', 'api1']);
    assert.deepEqual(
      services.map((s) => s.name),
      ['web'],
    );
    const standbys = await json<{ candidates: { lc: string }[]; rejected: { lc: string }[] }>([
      'lc',
      'standby-for',
      'web',
    ]);
    assert.ok([...standbys.candidates, ...standbys.rejected].some((c) => c.lc === 'api1'));

    const stopped = await json<{ outcome: string }>(['lc', 'stop', 'api1', '--timeout', '5000']);
    assert.ok(['clean', 'killed'].includes(stopped.outcome), stopped.outcome);
    assert.deepEqual(await json(['lc', 'destroy', 'api1']), { destroyed: 'api1' });
    const gone = await serve.api<{ code: string }>('GET', '/v1/lcs/api1');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'LC_NOT_FOUND');
  });

  test('apply creates what is missing, then has nothing to do', async () => {
    const file = path.join(work, 'host.yaml');
    fs.writeFileSync(
      file,
      [
        'lcs:',
        '  - name: api2',
        '    driver: namespace',
        '    memory: 64',
        '    disks: { system: 256, app: 0 }',
        `    addresses: [${t.prefix}.32/24]`,
        '',
      ].join('\n'),
    );
    const first = await json<{ changes: string[] }>(['apply', file]);
    assert.deepEqual(first.changes, ['lc api2 created']);
    const again = await json<{ changes: string[] }>(['apply', file]);
    assert.deepEqual(again.changes, []);
    const lc = await serve.api<{ lc: { memoryMb: number } }>('GET', '/v1/lcs/api2');
    assert.equal(lc.body.lc.memoryMb, 64);
    await json(['lc', 'destroy', 'api2']);
  });

  test('disk copy, copies, history', async () => {
    await json(['lc', 'exec', 'web', '--', 'sh', '-c', 'mkdir -p /srv/data && echo kept > /srv/data/file']);
    // For a person: the result on stdout, the progress of each phase on stderr, as a local copy shows it.
    const shown = await plain(['disk', 'copy', 'web', 'app', '--to', 'spare']);
    const firstId = /\(\S+, job (\w+)\)/.exec(shown.stdout)?.[1];
    assert.ok(firstId, shown.stdout);
    // Either mode (snapshot or send-receive) prepares, then cuts.
    assert.match(shown.stderr, /^pass 0 preparing /m, shown.stderr);
    assert.match(shown.stderr, /^pass \d+ cut /m, shown.stderr);
    const progress = (await serve.events())
      .filter((e) => e.type === 'copy.progress' && e.data.jobId === firstId)
      .map((e) => e.data as { from: string; to: string; progress: { phase: string } });
    const phases = [...new Set(progress.map((d) => d.progress.phase))];
    for (const phase of ['preparing', 'cut', 'done']) assert.ok(phases.includes(phase), phases.join(' '));
    assert.equal(phases.at(-1), 'done');

    // --json --follow: one JSON object per progress event, then the result.
    const followed = await remote(['disk', 'copy', 'web', 'app', '--to', 'spare', '--follow']);
    const lines = followed.stdout
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { progress?: { jobId: string; phase: string }; result?: { jobId: string } },
      );
    const copy = lines.at(-1)?.result;
    assert.ok(copy?.jobId, followed.stdout);
    assert.notEqual(copy.jobId, firstId);
    const followedPhases = lines.slice(0, -1).map((l) => l.progress);
    assert.ok(followedPhases.length >= 2 && followedPhases.every((p) => p?.jobId === copy.jobId));
    assert.equal(followedPhases.at(-1)?.phase, 'done');
    const copies = await json<{ id: string; state: string }[]>(['disk', 'copies']);
    assert.equal(copies.find((c) => c.id === copy.jobId)?.state, 'succeeded');
    const history = await json<{ job: { id: string } }>(['disk', 'history', copy.jobId, '--limit', '0']);
    assert.equal(history.job.id, copy.jobId);
    // The copy is on spare's disk: it boots with web's file.
    await json(['lc', 'start', 'spare']);
    const read = await json<{ stdout: string }>(['lc', 'exec', 'spare', '--', 'cat', '/srv/data/file']);
    assert.equal(read.stdout, 'kept\n');
    await json(['lc', 'stop', 'spare']);
  });

  test('patch add, list, mark; feed add, list, remove; monitor status and run', async () => {
    const file = path.join(work, 'fix.sh');
    fs.writeFileSync(file, '#!/bin/sh\nexit 0\n');
    const added = await json<{ patch: { name: string; sha256: string }; created: boolean }>([
      'patch',
      'add',
      file,
      '--category',
      'security',
      '--format',
      'script',
    ]);
    assert.equal(added.created, true);
    assert.equal(added.patch.sha256, crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    const patches = await json<{ patches: { name: string }[] }>(['patch', 'list']);
    assert.deepEqual(
      patches.patches.map((p) => p.name),
      ['fix.sh'],
    );
    await json(['patch', 'mark', 'fix.sh', '--lc', 'web', '--next-run', 'on']);
    const onWeb = await json<{ patches: { name: string; state: { applyNextRun: boolean } | null }[] }>([
      'patch',
      'list',
      '--lc',
      'web',
    ]);
    assert.equal(onWeb.patches[0]?.state?.applyNextRun, true);

    const key = crypto.randomBytes(32).toString('base64');
    const feed = await json<{ feed: { name: string; kind: string } }>([
      'feed',
      'add',
      'nowhere',
      '--kind',
      'patch-server',
      '--url',
      'http://127.0.0.1:9/patches/',
      '--public-key',
      key,
    ]);
    assert.equal(feed.feed.name, 'nowhere');
    const feeds = await json<{ feeds: { name: string }[] }>(['feed', 'list']);
    assert.deepEqual(
      feeds.feeds.map((f) => f.name),
      ['nowhere'],
    );
    const status = await json<{ feeds: { name: string }[] }>(['monitor', 'status']);
    assert.deepEqual(
      status.feeds.map((f) => f.name),
      ['nowhere'],
    );
    // The daemon's monitor polls: nothing answers there.
    assert.equal((await failure(['monitor', 'run', '--feed', 'nowhere'])).code, 'FEED_UNREACHABLE');
    assert.deepEqual(await json(['feed', 'remove', 'nowhere']), { removed: 'nowhere' });
    const none = await serve.api<{ feeds: unknown[] }>('GET', '/v1/feeds');
    assert.deepEqual(none.body.feeds, []);
  });

  test('token create, list, revoke; switches; updates and lc import answer the local errors', async () => {
    const made = await json<{ token: string; id: string; scope: string }>([
      'token',
      'create',
      'ops',
      '--scope',
      'read',
    ]);
    assert.equal(made.scope, 'read');
    const tokens = await json<{ id: string; operator: string }[]>(['token', 'list']);
    assert.ok(tokens.some((x) => x.id === made.id && x.operator === 'ops'));
    assert.ok(!JSON.stringify(tokens).includes(made.token));
    await json(['token', 'revoke', made.id]);
    const refused = await serve.api('GET', '/v1/lcs', undefined, { token: made.token });
    assert.equal(refused.status, 401);

    assert.deepEqual(await json(['switches']), []);
    assert.equal((await failure(['switches', 'sw-none'])).code, 'SWITCH_NOT_FOUND');
    const updates = await failure(['updates', 'web']);
    assert.equal(updates.code, await localError(['updates', 'web']));
    const imported = await failure(['lc', 'import', `none-${t.prefix.split('.')[2]}`, '--lxc-path', work]);
    assert.equal(
      imported.code,
      await localError(['lc', 'import', `none-${t.prefix.split('.')[2]}`, '--lxc-path', work]),
    );
  });

  test('the commands that cannot go through --api refuse, saying why', async () => {
    for (const [args, reason] of [
      [['host', 'init'], /pools and bridge at its start/],
      [['host', 'destroy', '--force'], /removes the store/],
      [['demo'], /throwaway host/],
      [['serve'], /the daemon that --api talks to/],
      [['agent', 'run'], /fleet agent/],
    ] as const) {
      const error = await failure([...args]);
      assert.equal(error.code, 'API_UNSUPPORTED', args.join(' '));
      assert.match(error.message, new RegExp(`understudy ${args[0]}`));
      assert.match(error.message, reason);
    }
  });

  test('every change was audited by the daemon, and the CLI never opened a store', async () => {
    const audit = await serve.api<{ entries: { action: string }[] }>('GET', '/v1/audit?limit=1000');
    const actions = new Set(audit.body.entries.map((e) => e.action));
    for (const action of [
      'POST /v1/host/pools',
      'POST /v1/images/import',
      'POST /v1/lcs/:name/exec',
      'POST /v1/lcs/:name/nics',
      'DELETE /v1/lcs/:name/nics/:nic',
      'POST /v1/apply',
      'POST /v1/disk-copies',
      'POST /v1/feeds',
      'POST /v1/lcs/import',
    ])
      assert.ok(actions.has(action), `${action} audited (${[...actions].join(', ')})`);
    assert.deepEqual(fs.readdirSync(cliDir), [], 'the CLI made nothing in its own state dir');
  });
});
