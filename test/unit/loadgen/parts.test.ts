import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ResponseParser,
  parseMix,
  parseSynRetransmits,
  quantile,
  readSynRetransmits,
  resolveLoadOptions,
  windowLatency,
  type RequestRecord,
} from '../../../src/loadgen/index.ts';

/** Feeds the text one byte at a time and returns what the parser produced. */
function parseBytewise(text: string, headRequest = false): ReturnType<ResponseParser['push']> {
  const parser = new ResponseParser({ headRequest, maxBodyBytes: 1024 });
  const bytes = Buffer.from(text, 'latin1');
  for (let i = 0; i < bytes.length; i += 1) {
    const response = parser.push(bytes.subarray(i, i + 1));
    if (response) return response;
  }
  return parser.end();
}

test('the response parser handles Content-Length, chunked, 1xx, close-framed and HEAD answers byte by byte', () => {
  const sized = parseBytewise('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Served-By: lc2\r\n\r\nhello');
  assert.equal(sized?.status, 200);
  assert.equal(sized?.body.toString(), 'hello');
  assert.equal(sized?.headers['x-served-by'], 'lc2');
  assert.equal(sized?.closeAfter, false);

  const chunked = parseBytewise(
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n',
  );
  assert.equal(chunked?.status, 201);
  assert.equal(chunked?.body.toString(), 'abcde');
  assert.equal(chunked?.closeAfter, true);

  const untilClose = parseBytewise('HTTP/1.0 200 OK\r\n\r\nall of it');
  assert.equal(untilClose?.body.toString(), 'all of it');
  assert.equal(untilClose?.closeAfter, true);

  const head = parseBytewise('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n', true);
  assert.equal(head?.bodyBytes, 0);

  const truncated = new ResponseParser({ headRequest: false, maxBodyBytes: 10 });
  assert.equal(truncated.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')), undefined);
  assert.equal(truncated.end(), undefined, 'a body cut short by the close is not a response');
  assert.throws(
    () =>
      new ResponseParser({ headRequest: false, maxBodyBytes: 1 }).push(
        Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'),
      ),
    /bad status line/,
  );
});

test('options: mix is parsed and normalised, bad values are rejected with INVALID_ARGUMENT', () => {
  assert.deepEqual(parseMix('newconn=0.3,keepalive=0.6,upload=0.1'), {
    newconn: 0.3,
    keepalive: 0.6,
    upload: 0.1,
  });
  const resolved = resolveLoadOptions({
    url: 'http://198.18.0.10/',
    rate: 1000,
    durationMs: 1000,
    maxRequests: 5,
    mix: { newconn: 1, keepalive: 3 },
  });
  assert.deepEqual(resolved.mix, { newconn: 0.25, keepalive: 0.75, upload: 0, write: 0 });
  assert.equal(resolved.port, 80);
  assert.equal(resolved.path, '/');
  assert.throws(() => parseMix('bogus=1'), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => resolveLoadOptions({ url: 'http://x/', rate: 0, durationMs: 1, maxRequests: 1 }), {
    code: 'INVALID_ARGUMENT',
  });
  assert.throws(() => resolveLoadOptions({ url: 'https://x/', rate: 1, durationMs: 1, maxRequests: 1 }), {
    code: 'INVALID_ARGUMENT',
  });
  assert.throws(
    () =>
      resolveLoadOptions({ url: 'http://x/', rate: 1, durationMs: 1, maxRequests: 1, mix: { keepalive: 0 } }),
    { code: 'INVALID_ARGUMENT' },
  );
});

test('windowLatency compares requests scheduled in the window with the steady state', () => {
  const record = (
    scheduledAt: number,
    latencyMs: number,
    outcome: RequestRecord['outcome'] = 'ok',
  ): RequestRecord => ({
    seq: scheduledAt,
    kind: 'keepalive',
    scheduledAt,
    latencyMs,
    lagMs: 0,
    outcome,
  });
  const records = [
    record(1, 2),
    record(2, 3),
    record(10, 50),
    record(11, 1200),
    record(12, 5, 'reset'),
    record(20, 4),
  ];
  const result = windowLatency(records, { t0: 10, t1: 12 });
  assert.deepEqual(result.window, { count: 2, p50: 50, p99: 1200, max: 1200, failed: 1 });
  assert.deepEqual(result.steady, { count: 3, p50: 3, p99: 4, max: 4, failed: 0 });
  assert.equal(result.addedP99Ms, 1196);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
  assert.equal(quantile([], 0.99), 0);
});

test('SYN retransmits are read from TcpExt of /proc/net/netstat', async () => {
  const sample =
    'TcpExt: SyncookiesSent TCPSynRetrans TCPOrigDataSent\nTcpExt: 0 17 42\nIpExt: InNoRoutes\nIpExt: 0\n';
  assert.equal(parseSynRetransmits(sample), 17);
  assert.throws(() => parseSynRetransmits('IpExt: A\nIpExt: 1\n'), /TCPSynRetrans/);
  const now = await readSynRetransmits();
  assert.ok(Number.isInteger(now) && now >= 0);
});
