/**
 * `POST /v1/images` on a real host: the build runs in the daemon and its progress is on the event
 * stream — the cached debootstrap tree (nothing fetched), unpacking, installing, sealing, then the
 * image — and the image is there; the errors are the ones `understudy image build` gives.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { statePaths, waitFor } from '../../../src/core/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';
import { startServe, type ServeProcess } from './serve-fixture.ts';

const testCache = process.env.UNDERSTUDY_TEST_CACHE ?? '/var/cache/understudy-test';

describe('image builds through the API', { timeout: 600_000 }, () => {
  let t: TestHost;
  let serve: ServeProcess;
  before(async () => {
    t = await createTestHost();
    // The debootstrapped base the debian recipe caches: shared with the other tests when it exists
    // (then nothing is fetched), else this build debootstraps it from the host's Debian archive.
    const base = path.join(testCache, 'debootstrap-bookworm-minbase.tar');
    const cache = statePaths(t.stateDir).cache;
    fs.mkdirSync(cache, { recursive: true });
    if (fs.existsSync(base)) fs.symlinkSync(base, path.join(cache, path.basename(base)));
    serve = await startServe(t.stateDir);
  });
  after(async () => {
    await serve?.stop();
    await t?.dispose();
  });

  const buildEvents = async (id: string) =>
    (await serve.events()).filter((e) => e.type === 'image.build' && e.data.buildId === id);

  test('a debian image: its phases arrive as events, the cached debootstrap tree is reported, the image exists', async () => {
    const res = await serve.api<{ build: { id: string } }>('POST', '/v1/images', {
      recipe: 'debian',
      name: 'deb-api',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.build.id;
    const end = await waitFor(
      async () => (await buildEvents(id)).find((e) => e.data.phase === 'built' || e.data.phase === 'failed'),
      { timeoutMs: 540_000, intervalMs: 200 },
    );
    assert.equal(end?.data.phase, 'built', JSON.stringify(end));
    const events = await buildEvents(id);
    const phases = events.map((e) => String(e.data.phase));
    const order = (p: string): number => phases.indexOf(p);
    const cached = fs.existsSync(path.join(statePaths(t.stateDir).cache, 'debootstrap-bookworm-minbase.tar'));
    assert.ok(cached, 'the debootstrapped base is in the cache after the build');
    const hit = events.find((e) => e.data.phase === 'debootstrap-cached');
    const fetched = events.filter((e) => e.data.phase === 'debootstrap');
    assert.ok(hit || fetched.length > 0, phases.join(' '));
    if (hit) {
      assert.equal(hit.data.cached, true);
      assert.equal(fetched.length, 0, 'nothing was debootstrapped');
    } else
      assert.ok(
        fetched.some((e) => /Retrieving|Extracting|Installing|Base system/.test(String(e.data.message))),
      );
    for (const [a, b] of [
      [hit ? 'debootstrap-cached' : 'debootstrap', 'unpack'],
      ['unpack', 'install'],
      ['install', 'seal'],
      ['seal', 'built'],
    ] as const)
      assert.ok(order(a) >= 0 && order(a) < order(b), `${a} before ${b}: ${phases.join(' ')}`);
    for (let i = 1; i < events.length; i++)
      assert.ok(
        Number(events[i]?.data.elapsedMs) >= Number(events[i - 1]?.data.elapsedMs),
        'elapsed time grows',
      );
    const images = await serve.api<{ images: { name: string; recipe: string }[] }>('GET', '/v1/images');
    assert.ok(images.body.images.some((i) => i.name === 'deb-api' && i.recipe === 'debian'));
    const audit = await serve.api<{ entries: { action: string; target: string; status: number }[] }>(
      'GET',
      '/v1/audit',
    );
    assert.ok(
      audit.body.entries.some(
        (e) => e.action === 'POST /v1/images' && e.target === 'deb-api' && e.status === 202,
      ),
    );
  });

  test("understudy --api image build: the daemon builds it, its phases are the CLI's progress lines", async () => {
    const out = await t.cli(['--api', serve.base, 'image', 'build', 'busybox', '--name', 'bb-api']);
    assert.match(out.stdout, /^image bb-api: \d+ MiB, built in [\d.]+ s by http/m);
    assert.match(out.stderr, /\]\s+installing busybox and its init/);
    assert.match(out.stderr, /\]\s+sealing the image/);
    const images = await serve.api<{ images: { name: string }[] }>('GET', '/v1/images');
    assert.ok(images.body.images.some((i) => i.name === 'bb-api'));
    const failed = await t.cli(['--api', serve.base, '--json', 'image', 'build', 'gentoo'], { okCodes: [1] });
    assert.equal((JSON.parse(failed.stdout) as { error: { code: string } }).error.code, 'IMAGE_UNKNOWN');
  });

  test('the errors of understudy image build: an unknown recipe, a suite for busybox, a bad name', async () => {
    const unknown = await serve.api<{ code: string }>('POST', '/v1/images', { recipe: 'gentoo' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.code, 'IMAGE_UNKNOWN');
    const suite = await serve.api<{ code: string; message: string }>('POST', '/v1/images', {
      recipe: 'busybox',
      suite: 'bookworm',
    });
    assert.equal(suite.status, 400);
    assert.equal(suite.body.code, 'INVALID_ARGUMENT');
    assert.match(suite.body.message, /debian recipe only/);
    const name = await serve.api<{ code: string }>('POST', '/v1/images', {
      recipe: 'busybox',
      name: 'Bad Name!',
    });
    assert.equal(name.status, 400);
    assert.equal(name.body.code, 'INVALID_ARGUMENT');
    const extra = await serve.api<{ code: string; message: string }>('POST', '/v1/images', {
      recipe: 'busybox',
      colour: 'red',
    });
    assert.equal(extra.status, 400);
    assert.match(extra.body.message, /body/);
  });
});
