import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDemo, type DemoProcess } from './demo-process.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  localPort: number | undefined;
}

function call(
  port: number,
  options: {
    method?: string;
    path: string;
    body?: Buffer | string;
    agent?: Agent;
    chunks?: Buffer[];
    chunkDelayMs?: number;
  },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const localPort = res.socket.localPort;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            localPort,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.chunks) {
      const chunks = [...options.chunks];
      const sendNext = (): void => {
        const chunk = chunks.shift();
        if (!chunk) {
          req.end();
          return;
        }
        req.write(chunk);
        setTimeout(sendNext, options.chunkDelayMs ?? 0);
      };
      sendNext();
    } else req.end(options.body);
  });
}

async function withDemo(t: {
  after: (fn: () => Promise<void>) => void;
}): Promise<{ dir: string; demo: DemoProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const demo = await startDemo({ dataDir: join(dir, 'data') });
  t.after(async () => {
    await demo.kill();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, demo };
}

test('keeps one connection alive across several requests and labels every answer', async (t) => {
  const { demo } = await withDemo(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const ports = new Set<number | undefined>();
  for (const path of ['/version', '/health', '/kv', '/nope', '/version']) {
    const answer = await call(demo.port, { path, agent });
    ports.add(answer.localPort);
    assert.equal(answer.headers['x-served-by'], hostname());
    assert.equal(answer.headers['x-version'], '1.0.0');
    assert.notEqual(answer.headers['connection'], 'close');
  }
  assert.equal(ports.size, 1, 'all five requests used the same client socket');
  const version = JSON.parse((await call(demo.port, { path: '/version', agent })).body.toString()) as Record<
    string,
    unknown
  >;
  assert.equal(version.service, 'demo');
  assert.equal(version.version, '1.0.0');
  assert.equal(version.pid, demo.pid);
  const stats = JSON.parse((await call(demo.port, { path: '/stats', agent })).body.toString()) as Record<
    string,
    unknown
  >;
  assert.deepEqual(stats, { connections: 1, inFlight: 1, served: 6, draining: false, writesInFlight: 0 });
});

test('acknowledged writes survive kill -9 and a torn last log line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const dataDir = join(dir, 'data');
  let demo = await startDemo({ dataDir });
  t.after(async () => {
    await demo.kill();
    await rm(dir, { recursive: true, force: true });
  });
  const binary = randomBytes(4096);
  assert.equal((await call(demo.port, { method: 'PUT', path: '/kv/alpha', body: 'one' })).status, 200);
  assert.equal((await call(demo.port, { method: 'PUT', path: '/kv/bin%2Fary', body: binary })).status, 200);
  assert.equal((await call(demo.port, { method: 'PUT', path: '/kv/gone', body: 'x' })).status, 200);
  assert.equal((await call(demo.port, { method: 'PUT', path: '/kv/alpha', body: 'two' })).status, 200);
  assert.equal((await call(demo.port, { method: 'DELETE', path: '/kv/gone' })).status, 200);
  assert.equal((await call(demo.port, { method: 'POST', path: '/notes', body: 'remember me' })).status, 201);
  assert.equal(
    (await call(demo.port, { method: 'PUT', path: '/kv/big', body: Buffer.alloc(1024 * 1024 + 1) })).status,
    413,
  );

  await demo.kill(); // SIGKILL: no chance to flush anything
  await appendFile(join(dataDir, 'kv.log'), '{"op":"put","k":"torn","v":"'); // a crash mid-write
  demo = await startDemo({ dataDir });

  assert.equal((await call(demo.port, { path: '/kv/alpha' })).body.toString(), 'two');
  assert.deepEqual((await call(demo.port, { path: '/kv/bin%2Fary' })).body, binary);
  assert.equal((await call(demo.port, { path: '/kv/gone' })).status, 404);
  assert.equal((await call(demo.port, { path: '/kv/torn' })).status, 404);
  assert.deepEqual(JSON.parse((await call(demo.port, { path: '/kv' })).body.toString()), {
    keys: ['alpha', 'bin/ary'],
  });
  const notes = JSON.parse((await call(demo.port, { path: '/notes' })).body.toString()) as {
    notes: Array<{ text: string }>;
  };
  assert.deepEqual(
    notes.notes.map((n) => n.text),
    ['remember me'],
  );
  // The torn line was cut away, so new writes are not glued onto it.
  assert.equal((await call(demo.port, { method: 'PUT', path: '/kv/after', body: 'ok' })).status, 200);
  await demo.kill();
  demo = await startDemo({ dataDir });
  assert.equal((await call(demo.port, { path: '/kv/after' })).body.toString(), 'ok');
  assert.ok((await readFile(join(dataDir, 'kv.log'), 'utf8')).endsWith('\n'));
});

test('compaction keeps every acknowledged write, including writes racing with it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const dataDir = join(dir, 'data');
  const env = { DEMO_COMPACT_BYTES: '8192' };
  let demo = await startDemo({ dataDir, env });
  t.after(async () => {
    await demo.kill();
    await rm(dir, { recursive: true, force: true });
  });
  const value = (i: number): string => `value-${i}-${'x'.repeat(100)}`;
  for (let round = 0; round < 10; round += 1) {
    const puts = [];
    for (let i = 0; i < 30; i += 1)
      puts.push(call(demo.port, { method: 'PUT', path: `/kv/k${i}`, body: value(round * 100 + i) }));
    puts.push(call(demo.port, { method: 'PUT', path: `/kv/unique-${round}`, body: value(round) }));
    for (const answer of await Promise.all(puts)) assert.equal(answer.status, 200);
  }
  const size = (await stat(join(dataDir, 'kv.log'))).size;
  assert.ok(size < 20_000, `the log was compacted (${size} bytes for ~40 live keys after ~45 KB of writes)`);
  await demo.kill();
  demo = await startDemo({ dataDir, env });
  for (let i = 0; i < 30; i += 1)
    assert.equal((await call(demo.port, { path: `/kv/k${i}` })).body.toString(), value(900 + i));
  for (let round = 0; round < 10; round += 1)
    assert.equal((await call(demo.port, { path: `/kv/unique-${round}` })).body.toString(), value(round));
});

test('SIGTERM finishes the in-flight request, refuses new connections and exits 0', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const pidFile = join(dir, 'demo.pid');
  const demo = await startDemo({ dataDir: join(dir, 'data'), pidFile });
  t.after(async () => {
    await demo.kill();
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal((await readFile(pidFile, 'utf8')).trim(), String(demo.pid));
  const slow = call(demo.port, { path: '/slow?ms=1500' });
  await sleep(300);
  process.kill(demo.pid, 'SIGTERM');
  await sleep(200);
  const refused = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: demo.port });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
  assert.equal(refused, 'ECONNREFUSED');
  const answer = await slow;
  assert.equal(answer.status, 200);
  assert.equal(answer.headers['connection'], 'close');
  assert.deepEqual(JSON.parse(answer.body.toString()), { slept: 1500 });
  const exit = await demo.exited;
  assert.equal(exit.exitCode, 0);
  await assert.rejects(stat(pidFile), { code: 'ENOENT' });
  assert.match(demo.output(), /stopping on SIGTERM/);
  assert.match(demo.output(), /stopped: served=/);
});

test('drain mode (SIGUSR1) closes keep-alive connections; SIGUSR2 ends it', async (t) => {
  const { demo } = await withDemo(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const before = await call(demo.port, { path: '/version', agent });
  assert.notEqual(before.headers['connection'], 'close');

  // An idle keep-alive socket opened before the drain must be closed by the server within ~1 s.
  const idle = connect({ host: '127.0.0.1', port: demo.port });
  await new Promise<void>((resolve) => idle.once('connect', () => resolve()));
  const idleClosed = new Promise<number>((resolve) => {
    const start = Date.now();
    idle.on('close', () => resolve(Date.now() - start));
    idle.resume();
  });

  const inFlight = call(demo.port, { path: '/slow?ms=600', agent });
  await sleep(100);
  process.kill(demo.pid, 'SIGUSR1');
  await sleep(100);
  assert.equal(
    (await inFlight).headers['connection'],
    'close',
    'a request in flight when the drain began is answered with close',
  );
  const during = await call(demo.port, { path: '/version', agent });
  assert.equal(during.status, 200);
  assert.equal(during.headers['connection'], 'close');
  const stats = JSON.parse((await call(demo.port, { path: '/stats' })).body.toString()) as {
    draining: boolean;
  };
  assert.equal(stats.draining, true);
  const closedAfter = await Promise.race([idleClosed, sleep(3000).then(() => -1)]);
  assert.ok(closedAfter > 0, 'the idle keep-alive socket was closed by the server');

  process.kill(demo.pid, 'SIGUSR2');
  await sleep(100);
  const after = await call(demo.port, { path: '/version', agent });
  assert.notEqual(after.headers['connection'], 'close');
  assert.match(demo.output(), /draining/);
});

test('upload answers the size and sha256 of a body sent slowly in chunks', async (t) => {
  const { demo } = await withDemo(t);
  const chunks = [randomBytes(700_000), randomBytes(700_000), randomBytes(12_345)];
  const answer = await call(demo.port, { method: 'POST', path: '/upload', chunks, chunkDelayMs: 150 });
  assert.equal(answer.status, 200);
  const expected = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
  assert.deepEqual(JSON.parse(answer.body.toString()), { bytes: 1_412_345, sha256: expected });
});

test('health is 503 when the data dir cannot be written', async (t) => {
  const { dir, demo } = await withDemo(t);
  assert.equal((await call(demo.port, { path: '/health' })).status, 200);
  await rm(join(dir, 'data'), { recursive: true, force: true });
  const sick = await call(demo.port, { path: '/health' });
  assert.equal(sick.status, 503);
  assert.equal((JSON.parse(sick.body.toString()) as { ok: boolean }).ok, false);
});

test('a store replaced on disk from outside (the final sync of a switch) is read again before the next request', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const first = await startDemo({ dataDir: a });
  const second = await startDemo({ dataDir: b });
  t.after(async () => {
    await first.kill();
    await second.kill();
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal((await call(second.port, { method: 'PUT', path: '/kv/k', body: 'stale' })).status, 200);
  assert.equal((await call(first.port, { method: 'PUT', path: '/kv/k', body: 'fresh' })).status, 200);
  assert.equal((await call(first.port, { method: 'POST', path: '/notes', body: 'from a' })).status, 201);
  // What rsync does: write a temporary file, rename it over the log.
  const { copyFile, rename } = await import('node:fs/promises');
  for (const log of ['kv.log', 'notes.log']) {
    await copyFile(join(a, log), join(b, `.${log}.tmp`));
    await rename(join(b, `.${log}.tmp`), join(b, log));
  }
  assert.equal((await call(second.port, { path: '/kv/k' })).body.toString(), 'fresh');
  const notes = JSON.parse((await call(second.port, { path: '/notes' })).body.toString()) as {
    notes: { text: string }[];
  };
  assert.deepEqual(
    notes.notes.map((n) => n.text),
    ['from a'],
  );
  // And it keeps appending to the new file.
  assert.equal((await call(second.port, { method: 'PUT', path: '/kv/k2', body: 'after' })).status, 200);
  assert.match(await readFile(join(b, 'kv.log'), 'utf8'), /"k":"k2"/);
});

test('a log patched in place from outside (the same file, grown) is read again before the next request', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const first = await startDemo({ dataDir: a });
  t.after(async () => {
    await first.kill();
    await second?.kill();
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal((await call(first.port, { method: 'PUT', path: '/kv/k1', body: 'one' })).status, 200);
  const { appendFile, copyFile, mkdir, stat } = await import('node:fs/promises');
  await mkdir(b);
  await copyFile(join(a, 'kv.log'), join(b, 'kv.log'));
  const second: DemoProcess | undefined = await startDemo({ dataDir: b });
  assert.equal((await call(first.port, { method: 'PUT', path: '/kv/k2', body: 'two' })).status, 200);
  // What the final sync's patch does: the new bytes written into the same file.
  const inode = (await stat(join(b, 'kv.log'))).ino;
  const grown = await readFile(join(a, 'kv.log'));
  const known = (await stat(join(b, 'kv.log'))).size;
  await appendFile(join(b, 'kv.log'), grown.subarray(known));
  assert.equal((await stat(join(b, 'kv.log'))).ino, inode);
  assert.equal((await call(second.port, { path: '/kv/k2' })).body.toString(), 'two');
  assert.equal((await call(second.port, { path: '/kv/k1' })).body.toString(), 'one');
});

interface WriteState {
  writesInFlight: number;
  oldestWriteMs: number;
  journalsBusy: boolean;
  quiesced: boolean;
  held: boolean;
  quiet?: boolean;
  waitedMs?: number;
  reloadMs?: number;
  reloadedTail?: boolean;
  keys?: number;
}

async function admin(port: number, path: string, method = 'POST'): Promise<WriteState> {
  const answer = await call(port, { method, path: `/.understudy/${path}` });
  assert.equal(answer.status, 200, answer.body.toString());
  return JSON.parse(answer.body.toString()) as WriteState;
}

test('quiesce answers once the last write in flight is on disk; a slow upload does not delay it', async (t) => {
  const { dir, demo } = await withDemo(t);
  // A write whose body is still arriving, and an upload that takes 1.5 s; both started before the quiesce.
  const write = call(demo.port, {
    method: 'PUT',
    path: '/kv/slow-write',
    chunks: [Buffer.from('part-1 '), Buffer.from('part-2')],
    chunkDelayMs: 300,
  });
  const upload = call(demo.port, {
    method: 'POST',
    path: '/upload',
    chunks: [randomBytes(1000), randomBytes(1000), randomBytes(1000), randomBytes(1000)],
    chunkDelayMs: 500,
  });
  await sleep(100);
  assert.equal((await admin(demo.port, 'writes', 'GET')).writesInFlight, 1);
  const started = Date.now();
  const quiesced = await admin(demo.port, 'quiesce?waitMs=5000');
  const waited = Date.now() - started;
  assert.equal(quiesced.quiet, true);
  assert.equal(quiesced.writesInFlight, 0);
  assert.ok(
    waited >= 150 && waited < 1000,
    `the quiesce waited for the write (${waited} ms), not the upload`,
  );
  const written = await write;
  assert.equal(written.status, 200);
  assert.equal(written.headers['connection'], 'close');
  assert.match(await readFile(join(dir, 'data/kv.log'), 'utf8'), /"k":"slow-write"/);
  const uploaded = await upload;
  assert.equal(uploaded.status, 200, 'the upload finished on the quiesced service');
  assert.ok(Date.now() - started > 1000);
});

test('quiesced without forwardTo: nothing read is dropped; a write is answered 503 + Retry-After and not applied, a read is served', async (t) => {
  const { dir, demo } = await withDemo(t);
  const put = await call(demo.port, { method: 'PUT', path: '/kv/k', body: 'before the cut' });
  assert.equal(put.status, 200);
  // Keep-alive sockets that each carried a request before the quiesce (a client's pool), and one that
  // connected before it and carries its first request after it.
  const open = async (): Promise<{
    socket: ReturnType<typeof connect>;
    received: string;
    ended: boolean;
  }> => {
    const socket = connect({ host: '127.0.0.1', port: demo.port, allowHalfOpen: true });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const s = { socket, received: '', ended: false };
    socket.on('data', (c: Buffer) => (s.received += c.toString()));
    socket.on('end', () => (s.ended = true));
    socket.on('error', () => undefined);
    return s;
  };
  const [putter, poster, reader, fresh] = await Promise.all([open(), open(), open(), open()]);
  for (const s of [putter, poster, reader]) s.socket.write('GET /version HTTP/1.1\r\nHost: x\r\n\r\n');
  await sleep(100);
  for (const s of [putter, poster, reader]) assert.match(s.received, /^HTTP\/1.1 200/);
  for (const s of [putter, poster, reader]) s.received = '';
  const q = await admin(demo.port, 'quiesce?waitMs=1000');
  assert.equal(q.quiet, true);
  // Requests already on their way when the service quiesced (idle sockets are not closed at once).
  await sleep(20);
  putter.socket.write('PUT /kv/late HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlate');
  poster.socket.write('POST /notes HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnote');
  reader.socket.write('GET /kv/k HTTP/1.1\r\nHost: x\r\n\r\n');
  fresh.socket.write('PUT /kv/fresh HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfresh');
  await sleep(300);
  for (const [name, s] of [
    ['PUT on an old socket', putter],
    ['POST on an old socket', poster],
    ['PUT on a connection made before the quiesce', fresh],
  ] as const) {
    assert.match(s.received, /^HTTP\/1.1 503/, `${name} is answered: ${JSON.stringify(s.received)}`);
    assert.match(s.received, /retry-after: 0/i, name);
    assert.match(s.received, /connection: close/i, name);
    assert.ok(s.ended, `${name}: the service closes the connection after the answer`);
  }
  assert.match(reader.received, /^HTTP\/1.1 200/, 'a read on an old socket is served');
  assert.match(reader.received, /connection: close/i);
  assert.match(reader.received, /before the cut$/);
  for (const s of [putter, poster, reader, fresh]) s.socket.destroy();
  assert.doesNotMatch(await readFile(join(dir, 'data/kv.log'), 'utf8'), /"k":"(late|fresh)"/);
  assert.doesNotMatch(await readFile(join(dir, 'data/notes.log'), 'utf8').catch(() => ''), /note/);
  assert.equal((await admin(demo.port, 'writes', 'GET')).writesInFlight, 0);
  await admin(demo.port, 'unquiesce');
  assert.equal((await call(demo.port, { method: 'PUT', path: '/kv/after', body: 'x' })).status, 200);
  const stats = JSON.parse((await call(demo.port, { path: '/stats' })).body.toString()) as {
    draining: boolean;
  };
  assert.equal(stats.draining, false);
});

test('quiesce reports a write that does not finish within the wait', async (t) => {
  const { demo } = await withDemo(t);
  const write = call(demo.port, {
    method: 'PUT',
    path: '/kv/very-slow',
    chunks: [Buffer.from('a'), Buffer.from('b')],
    chunkDelayMs: 800,
  });
  await sleep(100);
  const q = await admin(demo.port, 'quiesce?waitMs=100');
  assert.equal(q.quiet, false);
  assert.equal(q.writesInFlight, 1);
  assert.ok(q.oldestWriteMs >= 150, JSON.stringify(q));
  assert.equal((await write).status, 200, 'the write in flight still finishes');
});

test('hold keeps requests waiting; release reads the replaced logs first', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const first = await startDemo({ dataDir: a });
  const second = await startDemo({ dataDir: b });
  t.after(async () => {
    await first.kill();
    await second.kill();
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal((await call(first.port, { method: 'PUT', path: '/kv/k', body: 'fresh' })).status, 200);
  assert.equal((await admin(second.port, 'hold')).held, true);
  let answeredAt = 0;
  const waiting = call(second.port, { path: '/kv/k' }).then((answer) => {
    answeredAt = Date.now();
    return answer;
  });
  await sleep(200);
  assert.equal(answeredAt, 0, 'a request to the held service waits');
  // The final sync rewrites the log in place (same inode, as an incremental receive may do).
  const { copyFile } = await import('node:fs/promises');
  await copyFile(join(a, 'kv.log'), join(b, 'kv.log'));
  const releasedAt = Date.now();
  const released = await admin(second.port, 'release');
  assert.equal(released.held, false);
  assert.equal(released.keys, 1);
  const answer = await waiting;
  assert.ok(answeredAt >= releasedAt);
  assert.equal(answer.body.toString(), 'fresh');
});

test('release reads only the new records of a log patched in place; any other log is read whole', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const first = await startDemo({ dataDir: a });
  let second: DemoProcess | undefined;
  t.after(async () => {
    await first.kill();
    await second?.kill();
    await rm(dir, { recursive: true, force: true });
  });
  for (const k of ['k1', 'k2', 'k3'])
    assert.equal((await call(first.port, { method: 'PUT', path: `/kv/${k}`, body: `v-${k}` })).status, 200);
  // The standby starts from a copy of the log (the disk copy), then the old server writes on.
  const { appendFile, copyFile, mkdir, rename, stat, writeFile } = await import('node:fs/promises');
  await mkdir(b, { recursive: true });
  await copyFile(join(a, 'kv.log'), join(b, 'kv.log'));
  second = await startDemo({ dataDir: b });
  assert.equal((await call(first.port, { method: 'DELETE', path: '/kv/k1' })).status, 200);
  assert.equal((await call(first.port, { method: 'PUT', path: '/kv/k2', body: 'v-k2-new' })).status, 200);
  assert.equal((await call(first.port, { method: 'PUT', path: '/kv/k4', body: 'v-k4' })).status, 200);
  assert.equal((await admin(second.port, 'hold')).held, true);
  // The final sync patches the same file with the old server's appends.
  const known = (await stat(join(b, 'kv.log'))).size;
  await appendFile(join(b, 'kv.log'), (await readFile(join(a, 'kv.log'))).subarray(known));
  const released = await admin(second.port, 'release');
  assert.equal(released.reloadedTail, true, 'only the records after the known ones were read');
  assert.equal(released.keys, 3);
  assert.equal((await call(second.port, { path: '/kv/k1' })).status, 404);
  assert.equal((await call(second.port, { path: '/kv/k2' })).body.toString(), 'v-k2-new');
  assert.equal((await call(second.port, { path: '/kv/k4' })).body.toString(), 'v-k4');
  // It appends after what it read: a restart reads the same state.
  assert.equal((await call(second.port, { method: 'PUT', path: '/kv/k5', body: 'v-k5' })).status, 200);
  await second.kill();
  second = await startDemo({ dataDir: b });
  assert.equal((await call(second.port, { path: '/kv/k2' })).body.toString(), 'v-k2-new');
  assert.equal((await call(second.port, { path: '/kv/k5' })).body.toString(), 'v-k5');
  assert.equal((await call(second.port, { path: '/kv/k1' })).status, 404);
  // A log replaced by another file (rewritten, compacted) is read whole.
  assert.equal((await admin(second.port, 'hold')).held, true);
  const record = { op: 'put', k: 'k9', v: Buffer.from('v-k9').toString('base64') };
  await writeFile(join(b, 'kv.log.new'), `${JSON.stringify(record)}\n`);
  await rename(join(b, 'kv.log.new'), join(b, 'kv.log'));
  const whole = await admin(second.port, 'release');
  assert.equal(whole.reloadedTail, false);
  assert.equal(whole.keys, 1);
  assert.equal((await call(second.port, { path: '/kv/k2' })).status, 404);
  // And one written in place with other records is read whole too.
  assert.equal((await admin(second.port, 'hold')).held, true);
  const other = { op: 'put', k: 'k8', v: Buffer.from('v-k8').toString('base64') };
  await writeFile(join(b, 'kv.log'), `${JSON.stringify(other)}\n`.repeat(3));
  const rewritten = await admin(second.port, 'release');
  assert.equal(rewritten.reloadedTail, false);
  assert.equal(rewritten.keys, 1);
  assert.equal((await call(second.port, { path: '/kv/k8' })).body.toString(), 'v-k8');
});

test('an armed cut action is taken when its body ends with the word, never when it ends without it or goes away', async (t) => {
  const { demo } = await withDemo(t);
  const armed = (action: string): { req: ReturnType<typeof request>; answer: Promise<WriteState> } => {
    let req!: ReturnType<typeof request>;
    const answer = new Promise<WriteState>((resolve, reject) => {
      req = request(
        { host: '127.0.0.1', port: demo.port, method: 'POST', path: `/.understudy/${action}?armed=1` },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(JSON.parse(body) as WriteState));
        },
      );
      req.on('error', reject);
      req.write('x'); // headers and a first chunk go now
    });
    return { req, answer };
  };
  const withdrawn = armed('quiesce');
  await sleep(200);
  assert.equal((await admin(demo.port, 'writes', 'GET')).quiesced, false, 'armed, not taken');
  withdrawn.answer.catch(() => undefined);
  withdrawn.req.destroy();
  await sleep(100);
  assert.equal((await admin(demo.port, 'writes', 'GET')).quiesced, false, 'withdrawn, never taken');

  // The manager died: its curl ended the body without the word.
  const orphaned = armed('release');
  const hold = await admin(demo.port, 'hold');
  assert.equal(hold.held, true);
  orphaned.req.end();
  const refusal = (await orphaned.answer) as unknown as { error?: string };
  assert.match(refusal.error ?? '', /without "fire": nothing was done/);
  assert.equal((await admin(demo.port, 'writes', 'GET')).held, true, 'ended without the word: still held');
  await admin(demo.port, 'release');

  const fired = armed('quiesce');
  await sleep(200);
  assert.equal((await admin(demo.port, 'writes', 'GET')).quiesced, false);
  const firedAt = Date.now();
  fired.req.end('fire');
  const state = await fired.answer;
  assert.equal(state.quiesced, true);
  assert.equal(state.quiet, true);
  assert.ok(Date.now() - firedAt < 500);
});

test('quiesced with forwardTo: a connection that carried no request yet has its write served by the new server', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const old = await startDemo({ dataDir: join(dir, 'old') });
  const next = await startDemo({ dataDir: join(dir, 'new'), env: { DEMO_LISTEN: '127.0.0.2:0' } });
  t.after(async () => {
    await old.kill();
    await next.kill();
    await rm(dir, { recursive: true, force: true });
  });
  // Connected before the quiesce (its SYN reached the old server), first request after it.
  const socket = connect({ host: '127.0.0.1', port: old.port });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const q = await admin(old.port, `quiesce?waitMs=100&forwardTo=127.0.0.2:${next.port}`);
  assert.equal(q.quiet, true);
  await sleep(100);
  assert.equal(socket.destroyed, false, 'the fresh connection is left open');
  socket.write('PUT /kv/late HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlate');
  await Promise.race([closed, sleep(3000)]);
  assert.match(received, /^HTTP\/1.1 200/, `${old.output()}\n${next.output()}`);
  assert.match(received, /connection: close/i);
  assert.equal(await (await fetch(`http://127.0.0.2:${next.port}/kv/late`)).text(), 'late');
  assert.doesNotMatch(await readFile(join(dir, 'old/kv.log'), 'utf8').catch(() => ''), /"k":"late"/);
});

test('quiesced with forwardTo: requests on old keep-alive sockets are passed to the new server and answered; idle ones are not closed at once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const old = await startDemo({ dataDir: join(dir, 'old') });
  const next = await startDemo({ dataDir: join(dir, 'new'), env: { DEMO_LISTEN: '127.0.0.2:0' } });
  t.after(async () => {
    await old.kill();
    await next.kill();
    await rm(dir, { recursive: true, force: true });
  });
  const put = await fetch(`http://127.0.0.2:${next.port}/kv/k`, { method: 'PUT', body: 'on the new server' });
  assert.equal(put.status, 200);
  // Two keep-alive sockets that each carried a request before the quiesce (a client's pool).
  const sockets = await Promise.all(
    [0, 1].map(async () => {
      const socket = connect({ host: '127.0.0.1', port: old.port, allowHalfOpen: true });
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const s = { socket, received: '', ended: false };
      socket.on('data', (c: Buffer) => (s.received += c.toString()));
      socket.on('end', () => (s.ended = true));
      socket.on('error', () => undefined);
      socket.write('GET /version HTTP/1.1\r\nHost: x\r\n\r\n');
      return s;
    }),
  );
  await sleep(100);
  for (const s of sockets) assert.match(s.received, /^HTTP\/1.1 200/);
  for (const s of sockets) s.received = '';
  const q = await admin(old.port, `quiesce?waitMs=100&forwardTo=127.0.0.2:${next.port}`);
  assert.equal(q.quiet, true);
  // The service sweeps idle sockets every 5 ms when quiesced: closing them all at once is what met
  // requests already on their way, each then unanswered.
  await sleep(100);
  for (const s of sockets) assert.equal(s.ended, false, 'an idle old socket is not closed at once');
  const [first, second] = sockets as [(typeof sockets)[0], (typeof sockets)[0]];
  first.socket.write('GET /kv/k HTTP/1.1\r\nHost: x\r\n\r\n');
  second.socket.write('POST /notes HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnote');
  await sleep(500);
  assert.match(first.received, /^HTTP\/1.1 200/, `${old.output()}\n${next.output()}`);
  assert.match(first.received, /connection: close/i);
  assert.match(first.received, /on the new server$/, 'answered by the new server, with its data');
  assert.match(second.received, /^HTTP\/1.1 20[01]/, 'a POST (which no client sends again) is answered');
  assert.doesNotMatch(await readFile(join(dir, 'old/notes.log'), 'utf8').catch(() => ''), /note/);
  for (const s of sockets) s.socket.destroy();
});
