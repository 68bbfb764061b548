// The live copy's algorithm over a store's copy primitives, here in memory: catch-up passes until a
// pass is small enough, the cut at a freeze point, the final pass (inside the freeze only for a
// writer that outran every pass), the destination equal to the source at the cut, and on a failure
// half-way every snapshot and the partial destination removed with the source untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnderstudyError } from '../../../src/core/index.ts';
import {
  runLiveCopy,
  type CopyPolicy,
  type CopyProgress,
  type Freezer,
  type Throttle,
} from '../../../src/disk-copy/index.ts';
import { openMemoryCopy, type Files, type MemoryCopyHooks } from '../../helpers/memory-copy.ts';

const KiB = 1024;

interface Fixture {
  volumes: Map<string, Files>;
  source: Files;
  freezer: Freezer & { frozen: boolean; freezes: number };
  throttle: Throttle & { limits: (number | null)[] };
  progress: CopyProgress[];
  copy(o: {
    mode?: 'snapshot';
    hooks?: MemoryCopyHooks;
    policy?: CopyPolicy;
    signal?: AbortSignal;
  }): ReturnType<typeof runLiveCopy>;
  /** Keys of the job's snapshots still present. */
  snapshots(): string[];
}

function fixture(): Fixture {
  const source: Files = new Map([
    ['/etc/hostname', Buffer.from('lc1')],
    ['/var/data', Buffer.alloc(256 * KiB, 1)],
  ]);
  const volumes = new Map<string, Files>([['lc1/app', source]]);
  const freezer = {
    frozen: false,
    freezes: 0,
    async freeze() {
      freezer.frozen = true;
      freezer.freezes += 1;
    },
    async thaw() {
      freezer.frozen = false;
    },
  };
  const throttle = {
    limits: [] as (number | null)[],
    async limit(bps: number) {
      throttle.limits.push(bps);
    },
    async lift() {
      throttle.limits.push(null);
    },
  };
  const progress: CopyProgress[] = [];
  return {
    volumes,
    source,
    freezer,
    throttle,
    progress,
    copy: (o) =>
      runLiveCopy({
        jobId: 'job1',
        freezer,
        throttle,
        verify: true,
        ...(o.policy ? { policy: o.policy } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        onProgress: (e) => progress.push(e),
        open: async () =>
          openMemoryCopy({
            volumes,
            from: 'lc1/app',
            to: 'lc2/app',
            jobId: 'job1',
            ...(o.mode ? { mode: o.mode } : {}),
            ...(o.hooks ? { hooks: o.hooks } : {}),
          }),
      }),
    snapshots: () => [...volumes.keys()].filter((k) => k.includes('@')),
  };
}

/** A writer that writes `sizes[i]` bytes to the source during the i-th send, never while frozen. */
function writer(
  f: Fixture,
  sizes: number[],
): MemoryCopyHooks & { sends: { snapshot: string; frozen: boolean }[] } {
  const sends: { snapshot: string; frozen: boolean }[] = [];
  return {
    sends,
    whileSending({ snapshot }) {
      sends.push({ snapshot, frozen: f.freezer.frozen });
      const size = sizes[sends.length - 1] ?? 0;
      if (!f.freezer.frozen && size > 0)
        f.source.set(`/var/log/${sends.length}`, Buffer.alloc(size, sends.length));
    },
  };
}

test('catch-up passes run until one is small, then the cut and a final pass after the thaw', async () => {
  const f = fixture();
  const hooks = writer(f, [400 * KiB, 200 * KiB, 100 * KiB, 10 * KiB, 1 * KiB]);
  const result = await f.copy({ hooks, policy: { cutBelowBytes: 50 * KiB, maxPasses: 5 } });
  assert.deepEqual(
    result.passes.map((p) => [p.kind, p.pass, p.bytes]),
    [
      ['full', 0, 256 * KiB + 3],
      ['catch-up', 1, 400 * KiB],
      ['catch-up', 2, 200 * KiB],
      ['catch-up', 3, 100 * KiB],
      ['catch-up', 4, 10 * KiB],
      ['final', 5, 1 * KiB],
    ],
  );
  assert.equal(result.convergence, 'converged');
  assert.equal(f.freezer.freezes, 1);
  assert.equal(f.freezer.frozen, false, 'the writers are thawed');
  assert.deepEqual(
    hooks.sends.map((s) => [s.snapshot, s.frozen]),
    [
      ['pass-0', false],
      ['pass-1', false],
      ['pass-2', false],
      ['pass-3', false],
      ['pass-4', false],
      ['cut', false],
    ],
    'the final pass runs after the thaw',
  );
  // The destination is the source at the cut (the write during the final pass came after it).
  const copy = f.volumes.get('lc2/app');
  assert.ok(copy);
  assert.deepEqual([...copy.keys()].sort(), [
    '/etc/hostname',
    '/var/data',
    '/var/log/1',
    '/var/log/2',
    '/var/log/3',
    '/var/log/4',
    '/var/log/5',
  ]);
  assert.equal(result.verification?.method, 'tree-hash', 'across stores: both trees hashed');
  assert.equal(result.verification.bytes, 256 * KiB + 3 + 711 * KiB, 'every byte of the copy was read');
  assert.equal(result.history.writes, 5, 'every catch-up write is in the history');
  assert.deepEqual(f.snapshots(), [], 'no snapshot is left');
  assert.deepEqual(
    [...new Set(f.progress.map((p) => p.phase))],
    ['preparing', 'full', 'catch-up', 'cut', 'final', 'verifying', 'done'],
  );
  assert.deepEqual(f.throttle.limits, [], 'never throttled');
});

test('a writer that outruns every pass is throttled, then frozen through the final pass', async () => {
  const f = fixture();
  const hooks = writer(
    f,
    Array.from({ length: 20 }, () => 300 * KiB),
  );
  const result = await f.copy({
    hooks,
    policy: { cutBelowBytes: 50 * KiB, maxPasses: 2, throttleBytesPerSecond: 1024 * KiB },
  });
  assert.equal(result.convergence, 'long-freeze');
  assert.deepEqual(
    result.passes.map((p) => p.kind),
    ['full', 'catch-up', 'catch-up', 'catch-up', 'catch-up', 'final'],
  );
  assert.deepEqual(f.throttle.limits, [1024 * KiB, null], 'throttled, then lifted');
  assert.deepEqual(hooks.sends.at(-1), { snapshot: 'cut', frozen: true }, 'the final pass runs frozen');
  assert.equal(f.freezer.frozen, false);
  assert.deepEqual([...(f.volumes.get('lc2/app')?.keys() ?? [])].sort(), [...f.source.keys()].sort());
  assert.deepEqual(f.snapshots(), []);
});

test('snapshot mode is verified by the store comparing the clone with the cut, no tree hashed', async () => {
  const f = fixture();
  const result = await f.copy({ mode: 'snapshot' });
  assert.equal(result.mode, 'snapshot');
  assert.equal(result.convergence, 'instant');
  assert.deepEqual(result.verification && { ...result.verification, durationMs: 0 }, {
    method: 'clone-diff',
    digest: null,
    entries: null,
    bytes: 0,
    durationMs: 0,
  });
  assert.deepEqual([...(f.volumes.get('lc2/app')?.keys() ?? [])].sort(), ['/etc/hostname', '/var/data']);
  assert.deepEqual(f.snapshots(), []);
});

test('snapshot mode: a clone that differs from the cut fails DISK_COPY_VERIFY_FAILED naming the paths, nothing left', async () => {
  const f = fixture();
  const hooks: MemoryCopyHooks = {
    afterClone(destination) {
      destination.set('/etc/hostname', Buffer.from('changed'));
      destination.set('/stray', Buffer.from('x'));
    },
  };
  await assert.rejects(
    f.copy({ mode: 'snapshot', hooks }),
    (error: unknown) =>
      isUnderstudyError(error, 'DISK_COPY_VERIFY_FAILED') && /\/etc\/hostname, \/stray/.test(error.message),
  );
  assert.equal(f.volumes.has('lc2/app'), false, 'the copy is removed');
  assert.deepEqual(f.snapshots(), []);
  assert.equal(f.freezer.frozen, false);
});

for (const failAt of ['send:pass-0', 'send:pass-2', 'snapshot:cut', 'send:cut', 'clone:cut']) {
  test(`a failure at ${failAt} removes every snapshot and the destination, the source untouched`, async () => {
    const f = fixture();
    const before = new Map([...f.source].map(([p, b]) => [p, Buffer.from(b)]));
    const hooks = { ...writer(f, [100 * KiB, 100 * KiB, 100 * KiB]), failAt };
    await assert.rejects(
      f.copy({ hooks, policy: { cutBelowBytes: 50 * KiB, maxPasses: 5 } }),
      (error: unknown) =>
        isUnderstudyError(error, 'DISK_COPY_FAILED') && /injected failure/.test(error.message),
    );
    if (failAt.startsWith('send:'))
      assert.ok(
        hooks.sends.some((s) => `send:${s.snapshot}` === failAt),
        `the copy reached ${failAt}`,
      );
    assert.deepEqual(f.snapshots(), [], 'no snapshot is left');
    assert.equal(f.volumes.has('lc2/app'), false, 'no partial destination');
    for (const [p, data] of before) assert.ok(f.source.get(p)?.equals(data), `${p} is untouched`);
    assert.deepEqual(
      [...f.source.keys()].filter((p) => !before.has(p)).every((p) => p.startsWith('/var/log/')),
      true,
      'only the writer wrote to the source',
    );
    assert.equal(f.freezer.frozen, false, 'the writers are thawed');
    assert.equal(f.progress.at(-1)?.phase === 'done', false);
  });
}

test('a copy cancelled half-way fails with DISK_COPY_CANCELLED and leaves nothing', async () => {
  const f = fixture();
  const abort = new AbortController();
  const hooks = writer(f, [100 * KiB, 100 * KiB, 100 * KiB]);
  const cancelling: MemoryCopyHooks = {
    whileSending(send) {
      void hooks.whileSending?.(send);
      if (send.snapshot === 'pass-1') abort.abort();
    },
  };
  await assert.rejects(
    f.copy({ hooks: cancelling, policy: { cutBelowBytes: 0, maxPasses: 5 }, signal: abort.signal }),
    (error: unknown) => isUnderstudyError(error, 'DISK_COPY_CANCELLED'),
  );
  assert.deepEqual(f.snapshots(), []);
  assert.equal(f.volumes.has('lc2/app'), false);
});
