#!/usr/local/bin/node
// The demo service: a small but faithful HTTP/1.1 server that understudy patches and switches under
// load. Single file, Node 20, no dependencies. README.md next to this file describes the HTTP surface.
//
// Environment:
//   DEMO_LISTEN         host:port to listen on (default 0.0.0.0:80; "[::]:80" and "8080" also accepted)
//   DEMO_DATA_DIR       the application disk (default /srv/data)
//   DEMO_PID_FILE       write the pid here after listening (removed on clean exit)
//   DEMO_COMPACT_BYTES  compact the key-value log once it grows past this size (default 64 MiB)
//
// Signals: SIGTERM/SIGINT graceful stop (exit 0, forced after 10 s); SIGUSR1 enter drain mode
// (every response carries `Connection: close`, idle keep-alive sockets are closed); SIGUSR2 leave it.
//
// The cut of a switch (answered only to loopback peers, i.e. the manager inside this machine):
//   POST /.understudy/quiesce?waitMs=N[&forwardTo=ip:port]  no new write starts; every request read
//                                       from then on goes to forwardTo (answered with Connection: close;
//                                       idle keep-alive sockets are closed after 1 s); without forwardTo,
//                                       a write read from then on is answered 503 + Retry-After: 0 and
//                                       not applied, other requests are served; answers when the last
//                                       write in flight is on disk (or after N ms)
//   POST /.understudy/unquiesce         back to normal
//   POST /.understudy/hold              requests are accepted and parsed but wait (the standby)
//   POST /.understudy/release           the logs are read again from disk, then held requests proceed
//   GET  /.understudy/writes            writes in flight, the age of the oldest, whether quiesced/held
import { createServer, request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promises as fsp, constants as fsConstants } from 'node:fs';

const VERSION = '1.0.0';

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_SLOW_MS = 60_000;
const FORCE_EXIT_MS = 10_000;
/** In drain mode, a keep-alive socket with no request for this long is closed. */
const DRAIN_IDLE_GRACE_MS = 1_000;
const MAX_QUIESCE_WAIT_MS = 60_000;
/** The word that ends the body of an armed cut request when its action is due, and the most such a body may hold. */
const ARMED_WORD = 'fire';
const MAX_ARMED_BODY = 64;

const HOST = hostname();
const startedAt = new Date().toISOString();
const dataDir = process.env.DEMO_DATA_DIR || '/srv/data';
const listen = parseListen(process.env.DEMO_LISTEN || '0.0.0.0:80');
const pidFile = process.env.DEMO_PID_FILE || '';
const compactBytes =
  Number(process.env.DEMO_COMPACT_BYTES) > 0 ? Number(process.env.DEMO_COMPACT_BYTES) : 64 * 1024 * 1024;

function log(message) {
  process.stdout.write(`${new Date().toISOString()} demo ${VERSION} pid=${process.pid} ${message}\n`);
}

function parseListen(text) {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  if (match) return { host: match[1] ?? (match[2] || '0.0.0.0'), port: Number(match[3]) };
  if (/^\d+$/.test(text)) return { host: '0.0.0.0', port: Number(text) };
  throw new Error(`DEMO_LISTEN must be host:port, got ${JSON.stringify(text)}`);
}

// ---------------------------------------------------------------------------------------------
// Journal: an append-only file of JSON lines. append() resolves only after the record is on disk
// (write + fdatasync); concurrent appends share one fsync (group commit). A torn last line (crash
// mid-write) is dropped and truncated away at open. After any write error the journal refuses all
// further writes until restart, so a half-written record can never swallow a later acknowledged one.

/** How many of its last bytes a journal keeps to recognise its own file grown (see Journal.reload). */
const tailBytes = 4096;

const lastBytes = (data) => Buffer.from(data.subarray(Math.max(0, data.length - tailBytes)));

/** The intact JSON-line records of `data`, and where the last intact one ends. */
function parseRecords(data) {
  const records = [];
  let good = 0;
  for (let nl = data.indexOf(10, good); nl !== -1; nl = data.indexOf(10, good)) {
    try {
      records.push(JSON.parse(data.toString('utf8', good, nl)));
    } catch {
      break; // a torn line can only be the last one written; nothing after it was acknowledged
    }
    good = nl + 1;
  }
  return { records, good };
}

/** `length` bytes of `handle` from `position` (fewer when the file ends first). */
async function readAt(handle, length, position) {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

class Journal {
  constructor(file) {
    this.file = file;
    this.fh = null;
    this.pending = [];
    this.flushing = false;
    this.failed = null;
    this.size = 0;
    /** Batches of records written so far (a write that began is counted before it reaches the file). */
    this.batches = 0;
    /** The last bytes (at most tailBytes) of the file's first `size` bytes, as this journal read or wrote them. */
    this.tail = Buffer.alloc(0);
    /** Compact once the file grows past this; doubled after a compaction that could not shrink it. */
    this.compactAt = compactBytes;
    /** Set by the owner: returns the records that rebuild the current state, or null to skip. */
    this.compactor = null;
  }

  /** Reads and returns every intact record, then opens the file for appending. */
  async open() {
    let data = Buffer.alloc(0);
    try {
      data = await fsp.readFile(this.file);
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
    }
    const { records, good } = parseRecords(data);
    const existed = data.length > 0;
    this.fh = await fsp.open(this.file, 'a');
    if (good < data.length) {
      log(`journal ${this.file}: dropping ${data.length - good} bytes of a torn last record`);
      await this.fh.truncate(good);
      await this.fh.datasync();
    }
    if (!existed) await syncDir(dataDir);
    this.size = good;
    this.tail = lastBytes(data.subarray(0, good));
    this.ino = (await this.fh.stat()).ino;
    return records;
  }

  /**
   * Reads the file again after it changed from outside (the final sync of a switch). When it is the
   * same file, grown, and the bytes this journal holds end as they did (the sync patched in the other
   * machine's appends), only the records after them are read: `{ records, tail: true }`, to apply on
   * top of the current state; the cost follows what was appended, not the size of the log. Otherwise
   * (a new file renamed into place, compacted, shorter, different, or a torn last record) the file is
   * read whole: `{ records, tail: false }`, to rebuild the state from.
   */
  async reload() {
    const known = this.size;
    let handle = null;
    try {
      handle = await fsp.open(this.file, 'r');
      const stat = await handle.stat();
      if (stat.ino === this.ino && stat.size >= known && known >= this.tail.length) {
        const end = await readAt(handle, this.tail.length, known - this.tail.length);
        if (end.equals(this.tail)) {
          const added = await readAt(handle, stat.size - known, known);
          const { records, good } = parseRecords(added);
          if (good === added.length) {
            this.size = known + good;
            this.tail = lastBytes(Buffer.concat([this.tail, added]));
            return { records, tail: true };
          }
        }
      }
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
    } finally {
      await handle?.close();
    }
    return { records: await this.reopen(), tail: false };
  }

  /**
   * True when the file on disk is no longer what this journal wrote: it was replaced or written from
   * outside, e.g. by the final sync of the application disk when the service moves between machines
   * (a new file renamed into place, or the old one patched in place with the new records).
   */
  async replacedOnDisk() {
    if (this.flushing || this.pending.length > 0) return false;
    const batches = this.batches;
    try {
      const stat = await fsp.stat(this.file);
      // A write of this journal that began meanwhile grows the file before `size` counts it.
      if (this.busy || this.batches !== batches) return false;
      return stat.ino !== this.ino || stat.size !== this.size;
    } catch (error) {
      if (error.code === 'ENOENT') return true;
      throw error;
    }
  }

  /** A write or a compaction of this log is under way. */
  get busy() {
    return this.flushing || this.pending.length > 0;
  }

  /** Re-reads the file from scratch (after replacedOnDisk). */
  async reopen() {
    await this.fh?.close();
    this.fh = null;
    this.size = 0;
    return this.open();
  }

  /**
   * Appends a record; `apply` runs once it is on disk, before the promise resolves and before any
   * compaction can snapshot the state, so a compacted log never misses an acknowledged record.
   */
  append(record, apply) {
    if (this.failed) return Promise.reject(this.failed);
    if (!this.fh) return Promise.reject(new Error('journal not open'));
    return new Promise((resolve, reject) => {
      this.pending.push({ line: Buffer.from(JSON.stringify(record) + '\n'), apply, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  async flush() {
    this.flushing = true;
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      this.batches += 1;
      try {
        if (this.failed) throw this.failed;
        const data = Buffer.concat(batch.map((entry) => entry.line));
        await this.fh.write(data);
        await this.fh.datasync();
        this.size += data.length;
        this.tail = lastBytes(Buffer.concat([this.tail, data]));
        for (const entry of batch) {
          entry.apply?.();
          entry.resolve();
        }
      } catch (error) {
        this.failed = this.failed ?? error;
        log(`journal ${this.file} failed: ${error.message}`);
        for (const entry of batch) entry.reject(error);
        continue;
      }
      if (this.size > this.compactAt && this.compactor) await this.compact();
    }
    this.flushing = false;
  }

  /** Rewrites the file from the current state: temp file, fsync, rename, fsync dir. */
  async compact() {
    const records = this.compactor();
    if (!records) return;
    const tmp = `${this.file}.compact`;
    const data = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''));
    if (data.length > this.size / 2) {
      // Mostly live data: rewriting would not pay; try again when the file has doubled.
      this.compactAt = Math.max(compactBytes, 2 * this.size);
      return;
    }
    this.compactAt = Math.max(compactBytes, 2 * data.length);
    try {
      await fsp.writeFile(tmp, data, { flush: true });
      const handle = await fsp.open(tmp, 'r+');
      await handle.sync();
      await handle.close();
      await fsp.rename(tmp, this.file);
      await syncDir(dataDir);
      const old = this.fh;
      this.fh = await fsp.open(this.file, 'a');
      await old.close();
      this.size = data.length;
      this.tail = lastBytes(data);
    } catch (error) {
      log(`compaction of ${this.file} failed (the old log stays valid): ${error.message}`);
    }
  }

  async close() {
    while (this.flushing) await new Promise((r) => setTimeout(r, 5));
    await this.fh?.close();
    this.fh = null;
  }
}

async function syncDir(dir) {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// State: the key-value map and the notes, each backed by its journal.

const kv = new Map();
const notes = [];
let nextNoteId = 1;
let kvJournal = null;
let notesJournal = null;
let storeError = null;

function loadKv(records) {
  kv.clear();
  applyKv(records);
}

function applyKv(records) {
  for (const record of records) {
    if (record.op === 'put') kv.set(record.k, Buffer.from(record.v, 'base64'));
    else if (record.op === 'del') kv.delete(record.k);
  }
}

function loadNotes(records) {
  notes.length = 0;
  nextNoteId = 1;
  applyNotes(records);
}

function applyNotes(records) {
  for (const record of records) {
    notes.push(record);
    nextNoteId = Math.max(nextNoteId, Number(record.id) + 1);
  }
}

async function openStore() {
  try {
    await fsp.mkdir(dataDir, { recursive: true });
    kvJournal = new Journal(join(dataDir, 'kv.log'));
    loadKv(await kvJournal.open());
    kvJournal.compactor = () => [...kv].map(([k, v]) => ({ op: 'put', k, v: v.toString('base64') }));
    notesJournal = new Journal(join(dataDir, 'notes.log'));
    loadNotes(await notesJournal.open());
  } catch (error) {
    storeError = error;
    log(`store unavailable in ${dataDir}: ${error.message}`);
  }
}

let reloading = null;
/**
 * Before a request touches the store: if the logs were replaced on disk (the application disk was
 * synchronised from another machine while this service was held), load them again.
 */
function refreshStore() {
  reloading ??= (async () => {
    try {
      if (await kvJournal.replacedOnDisk()) {
        const read = await kvJournal.reload();
        (read.tail ? applyKv : loadKv)(read.records);
        log(`kv.log was changed on disk; ${read.tail ? 'its new records' : 'it'} read again`);
      }
      if (await notesJournal.replacedOnDisk()) {
        const read = await notesJournal.reload();
        (read.tail ? applyNotes : loadNotes)(read.records);
        log(`notes.log was changed on disk; ${read.tail ? 'its new records' : 'it'} read again`);
      }
    } finally {
      reloading = null;
    }
  })();
  return reloading;
}

// ---------------------------------------------------------------------------------------------
// HTTP

let draining = false;
let stopping = false;
let inFlight = 0;
let served = 0;
/** Requests that change the store (PUT/DELETE /kv/…, POST /notes) in progress, each with when it started. */
const writesInFlight = new Set();
/** Since when no new write may start (0: not quiesced). */
let quiescedAt = 0;
/** Quiesced: where requests on connections that carried none yet are passed (the new server), or null. */
let forwardTo = null;
/** While the standby is held: requests wait for this promise before they are routed. */
let held = null;
/**
 * socket -> { active: requests in progress, idleSince: ms timestamp when it last became idle,
 * requests: requests it has carried, acceptedAt }
 */
const sockets = new Map();

/** Every answer goes through here, so drain and stop reach responses to requests already in flight. */
function send(res, status, body, headers = {}) {
  if (draining || stopping || quiescedAt) headers = { ...headers, Connection: 'close' };
  const isBuffer = Buffer.isBuffer(body);
  const payload = isBuffer ? body : Buffer.from(JSON.stringify(body) + '\n');
  res.writeHead(status, {
    'Content-Type': isBuffer ? 'application/octet-stream' : 'application/json',
    'Content-Length': payload.length,
    ...headers,
  });
  res.end(payload);
}

/** Reads the whole body, at most `limit` bytes; resolves null (after answering 413) when larger. */
function readBody(req, res, limit = MAX_BODY_BYTES) {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > limit) {
      send(res, 413, { error: `body larger than ${limit} bytes` }, { Connection: 'close' });
      resolve(null);
      return;
    }
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) {
        send(res, 413, { error: `body larger than ${limit} bytes` });
        resolve(null);
      } else resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

function storeUnavailable(res) {
  send(res, 503, { error: `store unavailable: ${(storeError ?? kvJournal?.failed)?.message ?? 'not open'}` });
}

async function handleKv(req, res, key) {
  if (storeError || kvJournal.failed) return storeUnavailable(res);
  await refreshStore();
  if (key === null) {
    if (req.method !== 'GET') return send(res, 405, { error: 'use GET /kv' }, { Allow: 'GET' });
    return send(res, 200, { keys: [...kv.keys()].sort() });
  }
  if (key.length === 0 || key.length > 1024)
    return send(res, 400, { error: 'key must be 1-1024 characters' });
  switch (req.method) {
    case 'GET':
    case 'HEAD': {
      const value = kv.get(key);
      return value ? send(res, 200, value) : send(res, 404, { error: `no key ${key}` });
    }
    case 'PUT': {
      const value = await readBody(req, res);
      if (value === null) return undefined;
      await kvJournal.append({ op: 'put', k: key, v: value.toString('base64') }, () => kv.set(key, value));
      return send(res, 200, { key, bytes: value.length });
    }
    case 'DELETE': {
      if (!kv.has(key)) return send(res, 404, { error: `no key ${key}` });
      await kvJournal.append({ op: 'del', k: key }, () => kv.delete(key));
      return send(res, 200, { key, deleted: true });
    }
    default:
      return send(res, 405, { error: 'use GET, PUT or DELETE' }, { Allow: 'GET, PUT, DELETE' });
  }
}

async function handleNotes(req, res) {
  if (storeError || notesJournal.failed) return storeUnavailable(res);
  await refreshStore();
  if (req.method === 'GET') return send(res, 200, { notes });
  if (req.method !== 'POST') return send(res, 405, { error: 'use GET or POST' }, { Allow: 'GET, POST' });
  const body = await readBody(req, res);
  if (body === null) return undefined;
  const note = { id: nextNoteId++, at: new Date().toISOString(), text: body.toString('utf8') };
  await notesJournal.append(note, () => notes.push(note));
  return send(res, 201, note);
}

async function handleHealth(res) {
  const probe = join(dataDir, `.health-${process.pid}`);
  try {
    if (storeError) throw storeError;
    if (kvJournal.failed) throw kvJournal.failed;
    await fsp.access(dataDir, fsConstants.W_OK);
    await fsp.writeFile(probe, 'ok');
    await fsp.unlink(probe);
    return send(res, 200, { ok: true });
  } catch (error) {
    return send(res, 503, { ok: false, error: error.message });
  }
}

function handleSlow(req, res, url) {
  const ms = Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), MAX_SLOW_MS);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      send(res, 200, { slept: ms });
      resolve();
    }, ms);
    res.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function handleUpload(req, res) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      send(res, 200, { bytes, sha256: hash.digest('hex') });
      resolve();
    });
    req.on('error', reject);
  });
}

async function route(req, res) {
  const url = new URL(req.url ?? '/', 'http://demo');
  const path = url.pathname;
  const method = req.method;
  if (path === '/' || path === '/version') {
    return send(res, 200, { service: 'demo', version: VERSION, host: HOST, pid: process.pid, startedAt });
  }
  if (path === '/health') return handleHealth(res);
  if (path === '/stats') {
    return send(res, 200, {
      connections: sockets.size,
      inFlight,
      served,
      draining: draining || stopping || quiescedAt > 0,
      writesInFlight: writesInFlight.size,
    });
  }
  if (path === '/kv' || path === '/kv/') return handleKv(req, res, null);
  if (path.startsWith('/kv/')) {
    let key;
    try {
      key = decodeURIComponent(path.slice(4));
    } catch {
      return send(res, 400, { error: 'key is not valid percent-encoding' });
    }
    return handleKv(req, res, key);
  }
  if (path === '/notes') return handleNotes(req, res);
  if (path === '/slow' && (method === 'GET' || method === 'HEAD')) return handleSlow(req, res, url);
  if (path === '/upload' && (method === 'POST' || method === 'PUT')) return handleUpload(req, res);
  return send(res, 404, { error: `no route ${method} ${path}` });
}

/** Passes a request to `target` and its answer back, closing the connection after it. */
function forward(req, res, target) {
  const upstream = httpRequest(
    {
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, connection: 'close' },
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, connection: 'close' });
      answer.pipe(res);
    },
  );
  upstream.on('error', (error) => {
    log(`forwarding ${req.method} ${req.url} to ${target.host}:${target.port} failed: ${error.message}`);
    res.destroy();
  });
  req.pipe(upstream);
}

/** Requests that change the store. */
function isWrite(method, path) {
  if (path.startsWith('/kv/')) return method === 'PUT' || method === 'DELETE';
  return path === '/notes' && method === 'POST';
}

const isLoopback = (address) =>
  address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';

function writeState() {
  const now = Date.now();
  let oldest = 0;
  for (const write of writesInFlight) oldest = Math.max(oldest, now - write.at);
  return {
    writesInFlight: writesInFlight.size,
    oldestWriteMs: oldest,
    journalsBusy: Boolean(kvJournal?.busy || notesJournal?.busy),
    quiesced: quiescedAt > 0,
    held: held !== null,
  };
}

/**
 * The cut of a switch, on the machine that hands the service over: no write starts from now on; the
 * keep-alive sockets that carried requests are closed once idle for the grace (their clients open new
 * connections, which reach the new server), and every request read meanwhile is answered (passed to
 * `forwardTo`, or without it: a write answered 503, anything else served); requests in flight finish
 * (a slow upload may take its time: it does not write). Answers once no write is in flight and the logs are on disk, or after
 * `waitMs` with what is still in flight.
 */
async function handleQuiesce(req, res, url) {
  if (!(await armedUntilFired(req, res, url))) return undefined;
  const waitMs = Math.min(Math.max(Number(url.searchParams.get('waitMs')) || 0, 0), MAX_QUIESCE_WAIT_MS);
  const started = Date.now();
  const target = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(url.searchParams.get('forwardTo') ?? '');
  if (target) forwardTo = { host: target[1], port: Number(target[2]) };
  if (!quiescedAt) {
    quiescedAt = started;
    log(
      `quiesced: no new writes; connections=${sockets.size} inFlight=${inFlight} writes=${writesInFlight.size}`,
    );
  }
  for (;;) {
    sweepIdleSockets();
    const state = writeState();
    const now = Date.now();
    // A write read from now on is never applied here (passed on, or answered 503): the last write
    // is the last one in flight.
    const quiet = state.writesInFlight === 0 && !state.journalsBusy;
    if (quiet || now - started >= waitMs) {
      return send(res, 200, { ...state, quiet, waitedMs: now - started, inFlight: inFlight - 1 });
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

function handleUnquiesce(res) {
  if (quiescedAt) log('quiesce ended');
  quiescedAt = 0;
  forwardTo = null;
  return send(res, 200, writeState());
}

function handleHold(res) {
  if (!held) {
    let release;
    const promise = new Promise((resolve) => (release = resolve));
    held = { promise, release };
    log('held: requests wait until released');
  }
  return send(res, 200, writeState());
}

/** Reads the logs again (the final sync of a switch replaced them while held), then lets requests go. */
async function handleRelease(req, res, url) {
  if (!(await armedUntilFired(req, res, url))) return undefined;
  const started = Date.now();
  let reloadedTail = false;
  if (held) {
    try {
      if (!storeError) {
        // Usually the logs only grew (the old server's appends, patched in by the final sync): only
        // their new records are read.
        const kvRead = await kvJournal.reload();
        (kvRead.tail ? applyKv : loadKv)(kvRead.records);
        const notesRead = await notesJournal.reload();
        (notesRead.tail ? applyNotes : loadNotes)(notesRead.records);
        reloadedTail = kvRead.tail && notesRead.tail;
      }
    } finally {
      const { release } = held;
      held = null;
      release();
    }
    log(
      `released after reading the logs again (${reloadedTail ? 'their new records' : 'whole'}): keys=${kv.size} notes=${notes.length}`,
    );
  }
  return send(res, 200, {
    ...writeState(),
    reloadMs: Date.now() - started,
    reloadedTail,
    keys: kv.size,
    notes: notes.length,
  });
}

/**
 * `?armed=1`: the manager sends the request ahead of time with a body it ends only when the action is
 * due, so that the action costs no process start or connection then. The body must end with the word
 * `fire`: a body that ends without it is a manager that went away (its curl saw the end of its input
 * and ended the body), and the action is not taken then, nor if the request goes away first. Resolves
 * true when the action is due; otherwise false, having answered the request when it is still there.
 */
function armedUntilFired(req, res, url) {
  if (url.searchParams.get('armed') !== '1') return Promise.resolve(true);
  return new Promise((resolve) => {
    let tail = '';
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      tail = (tail + chunk.toString('latin1')).slice(-ARMED_WORD.length);
    });
    req.on('end', () => {
      if (size <= MAX_ARMED_BODY && tail === ARMED_WORD) return resolve(true);
      send(res, 409, { error: `the armed request ended without "${ARMED_WORD}": nothing was done` });
      resolve(false);
    });
    req.on('close', () => resolve(false));
    req.on('error', () => resolve(false));
  });
}

function routeAdmin(req, res, url) {
  if (!isLoopback(req.socket.remoteAddress)) return send(res, 403, { error: 'only from this machine' });
  const method = req.method;
  switch (url.pathname) {
    case '/.understudy/writes':
      return send(res, 200, writeState());
    case '/.understudy/quiesce':
      return method === 'POST' ? handleQuiesce(req, res, url) : send(res, 405, { error: 'use POST' });
    case '/.understudy/unquiesce':
      return method === 'POST' ? handleUnquiesce(res) : send(res, 405, { error: 'use POST' });
    case '/.understudy/hold':
      return method === 'POST' ? handleHold(res) : send(res, 405, { error: 'use POST' });
    case '/.understudy/release':
      return method === 'POST' ? handleRelease(req, res, url) : send(res, 405, { error: 'use POST' });
    default:
      return send(res, 404, { error: `no route ${method} ${url.pathname}` });
  }
}

/** Counts a request a quiesced server answers on its socket, as active until the answer closes. */
function countUntilClosed(state, res) {
  if (!state) return;
  state.requests += 1;
  state.active += 1;
  res.on('close', () => {
    state.active -= 1;
    state.idleSince = Date.now();
  });
}

const server = createServer((req, res) => {
  const socket = req.socket;
  const state = sockets.get(socket);
  const url = new URL(req.url ?? '/', 'http://demo');
  const admin = url.pathname.startsWith('/.understudy/');
  const write = !admin && isWrite(req.method, url.pathname);
  if (quiescedAt && !admin) {
    if (forwardTo) {
      // Quiesced with the new server's address: a request read here from now on — on a connection
      // that reached this server just before the address moved, or on an old keep-alive socket its
      // client reused as the service was handing over — is passed to the new server (held there until
      // it serves) and answered with Connection: close. No write starts here, and no client has to
      // send anything again (which no client does for a POST).
      countUntilClosed(state, res);
      forward(req, res, forwardTo);
      return;
    }
    if (write) {
      // Quiesced without the new server's address: a write read from now on (on an old keep-alive
      // socket its client reused, or on a connection that reached this server just before the address
      // moved) must not be applied here, after the cut, and must not be dropped either (no client
      // sends a POST again on its own). It is answered, unread and unapplied, with 503 and
      // `Retry-After: 0` (send it again now: a new connection reaches the server that takes over),
      // and the connection is closed. A request that does not write is served here (below), with
      // the data as of the cut.
      countUntilClosed(state, res);
      // The body is read (and discarded) first: closing a socket with unread data in it resets the
      // connection, which can destroy the answer before the client reads it.
      req.on('end', () =>
        send(
          res,
          503,
          { error: 'the service is moving to another server; this write was not applied: send it again' },
          { 'Retry-After': '0' },
        ),
      );
      req.on('error', () => res.destroy());
      req.resume();
      return;
    }
  }
  if (state) state.requests += 1;
  if (state) state.active += 1;
  inFlight += 1;
  const writeToken = write ? { at: Date.now() } : null;
  if (writeToken) writesInFlight.add(writeToken);
  res.setHeader('X-Served-By', HOST);
  res.setHeader('X-Version', VERSION);
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    inFlight -= 1;
    served += 1;
    if (writeToken) writesInFlight.delete(writeToken);
    if (state) {
      state.active -= 1;
      state.idleSince = Date.now();
    }
    if (stopping) maybeExit();
  };
  res.on('finish', finish);
  res.on('close', finish);
  const handle = admin
    ? Promise.resolve().then(() => routeAdmin(req, res, url))
    : held
      ? held.promise.then(() =>
          // Quiesced with a forward target while held: a switch was reversed, and the requests this
          // server held go to the server that keeps the service.
          quiescedAt && forwardTo ? forward(req, res, forwardTo) : route(req, res),
        )
      : route(req, res);
  handle.catch((error) => {
    log(`request ${req.method} ${req.url} failed: ${error.message}`);
    if (!res.headersSent) send(res, 500, { error: error.message });
    else res.destroy();
  });
});
// Node answers idle keep-alive sockets by closing them after this; clients should close theirs sooner.
server.keepAliveTimeout = 5_000;
server.on('connection', (socket) => {
  sockets.set(socket, { active: 0, idleSince: Date.now(), requests: 0, acceptedAt: Date.now() });
  socket.on('close', () => {
    sockets.delete(socket);
    if (stopping) maybeExit();
  });
});
server.on('clientError', (error, socket) => {
  if (socket.writable && error.code !== 'ECONNRESET') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  } else socket.destroy();
});

/**
 * In drain, quiesce or stop mode: close keep-alive sockets that have had no request for the grace
 * period (none when stopping; quiesced, a socket that has not carried a request yet is left open).
 * Quiesced, an idle socket keeps the grace: a request its client writes meanwhile is answered (passed
 * on, served, or a write answered 503), where closing every idle socket at once would meet requests
 * already on their way (each then sent again, possibly onto another socket closing at the same moment).
 */
function sweepIdleSockets() {
  if (!draining && !stopping && !quiescedAt) return;
  const now = Date.now();
  for (const [socket, state] of sockets) {
    if (state.active > 0) continue;
    // Quiesced, a socket that has carried no request yet is left to present it (it is forwarded, or
    // served when it reads); closing it could fail a client that has not been answered at all.
    if (quiescedAt && !stopping && state.requests === 0) continue;
    const grace = stopping ? 0 : DRAIN_IDLE_GRACE_MS;
    const since = state.requests > 0 ? state.idleSince : state.acceptedAt;
    if (now - since >= grace) socket.end();
  }
}
setInterval(sweepIdleSockets, 200).unref();

function enterDrain() {
  if (draining) return;
  draining = true;
  log(`draining: responses carry Connection: close; connections=${sockets.size} inFlight=${inFlight}`);
}

function leaveDrain() {
  if (!draining) return;
  draining = false;
  log('drain ended');
}

function stop(signal) {
  if (stopping) return;
  stopping = true;
  log(`stopping on ${signal}: connections=${sockets.size} inFlight=${inFlight}`);
  server.close();
  sweepIdleSockets();
  setTimeout(() => {
    log(`forced exit after ${FORCE_EXIT_MS} ms: inFlight=${inFlight}`);
    void exit(0);
  }, FORCE_EXIT_MS).unref();
  maybeExit();
}

function maybeExit() {
  if (inFlight === 0 && sockets.size === 0) void exit(0);
  else if (inFlight === 0) sweepIdleSockets();
}

let exiting = false;
async function exit(code) {
  if (exiting) return;
  exiting = true;
  await Promise.allSettled([kvJournal?.close(), notesJournal?.close()]);
  if (pidFile) {
    try {
      if ((await fsp.readFile(pidFile, 'utf8')).trim() === String(process.pid)) await fsp.unlink(pidFile);
    } catch {
      // The pid file is gone or unreadable; nothing to clean up.
    }
  }
  log(`stopped: served=${served}`);
  process.exit(code);
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGUSR1', enterDrain);
process.on('SIGUSR2', leaveDrain);

await openStore();
server.listen(listen.port, listen.host, async () => {
  const address = server.address();
  if (pidFile) await fsp.writeFile(pidFile, `${process.pid}\n`);
  log(
    `started on ${address.address}:${address.port} host=${HOST} data=${dataDir} keys=${kv.size} notes=${notes.length}`,
  );
});
server.on('error', (error) => {
  log(`cannot listen on ${listen.host}:${listen.port}: ${error.message}`);
  process.exit(1);
});
