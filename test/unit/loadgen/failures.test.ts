import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { startLoad, type LoadOptions } from '../../../src/loadgen/index.ts';

/** A tiny HTTP server on 127.0.0.1; closed (with every socket) after the test. */
async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  handler: RequestListener,
): Promise<{ port: number; server: Server }> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, server };
}

const quick = (port: number, extra: Partial<LoadOptions> = {}): LoadOptions => ({
  url: `http://127.0.0.1:${port}/`,
  rate: 200,
  durationMs: 500,
  maxRequests: 100,
  mix: { newconn: 0.5, keepalive: 0.5 },
  timeoutMs: 1000,
  ...extra,
});

test('a server that destroys sockets mid-request: every request is a reset, none retried', async (t) => {
  let seen = 0;
  const { port } = await serve(t, (req) => {
    seen += 1;
    req.socket.destroy();
  });
  const result = await startLoad(quick(port)).done;
  assert.equal(result.summary.total, 100);
  assert.equal(result.summary.byOutcome.reset, 100);
  assert.equal(seen, 100, 'the server saw each request exactly once');
  for (const record of result.records)
    assert.ok(['ECONNRESET', 'HANGUP', 'EPIPE'].includes(record.errorCode ?? ''), record.errorCode);
});

test('a half-written response then a close is a reset, not ok', async (t) => {
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': '100' });
    res.write('only a part');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const result = await startLoad(quick(port, { maxRequests: 20 })).done;
  assert.equal(result.summary.byOutcome.reset, 20);
});

test('a closed port: every request is refused', async () => {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const result = await startLoad(quick(port, { mix: { newconn: 1, keepalive: 1, upload: 1, write: 1 } }))
    .done;
  assert.equal(result.summary.total, 100);
  assert.equal(result.summary.byOutcome.refused, 100);
  assert.equal(result.summary.byErrorCode['ECONNREFUSED'], 100);
  assert.equal(result.ackedWrites.length, 0);
});

test('a server that answers Connection: close every time: all ok, each keep-alive connection replaced', async (t) => {
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200, { Connection: 'close', 'X-Served-By': 'lc1', 'X-Version': '9' });
    res.end('bye');
  });
  const result = await startLoad(
    quick(port, { mix: { keepalive: 1 }, rate: 500, durationMs: 1000, maxRequests: 500 }),
  ).done;
  assert.equal(result.summary.byOutcome.ok, 500);
  assert.equal(result.summary.failed, 0);
  assert.equal(result.summary.connectionsOpened, 500);
  assert.deepEqual(result.summary.byServedBy, { lc1: 500 });
  assert.deepEqual(result.summary.byVersion, { '9': 500 });
});

test('a server that never answers: every request times out', async (t) => {
  const { port } = await serve(t, () => undefined);
  const started = Date.now();
  const result = await startLoad(quick(port, { timeoutMs: 300, maxRequests: 40, rate: 100 })).done;
  assert.equal(result.summary.byOutcome.timeout, 40);
  for (const record of result.records)
    assert.ok(record.latencyMs >= 299 && record.latencyMs < 1000, String(record.latencyMs));
  assert.ok(Date.now() - started < 3000);
});

test('statuses at or above errorStatusFrom are http-error; chunked and 1xx answers parse', async (t) => {
  let n = 0;
  const { port } = await serve(t, (_req, res) => {
    n += 1;
    if (n % 2 === 0) {
      res.writeHead(503);
      res.end('busy');
      return;
    }
    res.writeContinue();
    res.write('chunked ');
    res.end('answer');
  });
  const result = await startLoad(quick(port, { maxRequests: 50, mix: { keepalive: 1 } })).done;
  assert.equal(result.summary.byOutcome.ok, 25);
  assert.equal(result.summary.byOutcome['http-error'], 25);
  assert.deepEqual(result.summary.byStatus, { '200': 25, '503': 25 });
  assert.ok(result.summary.connectionsOpened <= 16, 'keep-alive connections were reused');
});

test('stop() ends a run early; mark() timestamps land inside the run', async (t) => {
  const { port } = await serve(t, (_req, res) => res.end('ok'));
  const load = startLoad(quick(port, { durationMs: 60_000, maxRequests: 1_000_000 }));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const mark = load.mark('switch');
  const result = await load.stop();
  assert.ok(result.summary.total > 20 && result.summary.total < 200, String(result.summary.total));
  assert.equal(result.summary.failed, 0);
  assert.deepEqual(result.marks, [mark]);
  assert.ok(mark.at > result.startedAt && mark.at < result.endedAt);
});

test('a reused keep-alive connection closed before any answer byte: the request is sent again on a new one, as HTTP clients do', async (t) => {
  const served = new Map<Socket, number>();
  let unanswered = 0;
  const { port } = await serve(t, (req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n === 2 && [...served.keys()].indexOf(req.socket) < 4) {
      // The server closes the idle connection just as the client reuses it: nothing is answered.
      unanswered += 1;
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'X-Served-By': 'lc' });
    res.end('ok');
  });
  const result = await startLoad(
    quick(port, { mix: { keepalive: 1, write: 1 }, rate: 100, durationMs: 600, maxRequests: 40 }),
  ).done;
  assert.equal(result.summary.failed, 0, JSON.stringify(result.records.filter((r) => r.outcome !== 'ok')));
  assert.ok(unanswered > 0);
  assert.equal(
    result.records.reduce((sum, r) => sum + (r.resent ?? 0), 0),
    unanswered,
    'each unanswered request was sent again',
  );
  assert.equal(result.ackedWrites.length, result.summary.byKind.write.total);
});

test('a reused connection that answered partly, or a new one closed unanswered, is a failure, never resent', async (t) => {
  const served = new Map<Socket, number>();
  const { port } = await serve(t, (req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n === 2) {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('part');
      setTimeout(() => req.socket.destroy(), 10);
      return;
    }
    res.end('ok');
  });
  const result = await startLoad(
    quick(port, { mix: { keepalive: 1 }, rate: 100, durationMs: 400, maxRequests: 20 }),
  ).done;
  assert.ok(result.summary.byOutcome.reset > 0);
  assert.equal(result.summary.resent, 0);
});

test('a 503 with Retry-After: 0 (not applied, send it again) is sent again and counted; a 503 without it is an error', async (t) => {
  let refused = 0;
  const { port } = await serve(t, (req, res) => {
    req.resume();
    if (req.url?.startsWith('/plain')) {
      res.writeHead(503, { 'Content-Length': '0' });
      res.end();
      return;
    }
    if (refused < 5) {
      refused += 1;
      res.writeHead(503, { 'Retry-After': '0', Connection: 'close', 'Content-Length': '0' });
      res.end();
      return;
    }
    res.writeHead(200, { 'X-Served-By': 'lc' });
    res.end('ok');
  });
  const result = await startLoad(
    quick(port, { mix: { keepalive: 1, write: 1 }, rate: 100, durationMs: 400, maxRequests: 20 }),
  ).done;
  assert.equal(result.summary.failed, 0, JSON.stringify(result.records.filter((r) => r.outcome !== 'ok')));
  assert.equal(
    result.records.reduce((sum, r) => sum + (r.resent ?? 0), 0),
    5,
    'each 503 was sent again',
  );
  assert.equal(result.ackedWrites.length, result.summary.byKind.write.total);
  const plain = await startLoad({
    ...quick(port, { mix: { keepalive: 1 }, maxRequests: 5 }),
    url: `http://127.0.0.1:${port}/plain`,
  }).done;
  assert.equal(plain.summary.byOutcome['http-error'], 5);
  assert.equal(plain.summary.resent, 0);
});
