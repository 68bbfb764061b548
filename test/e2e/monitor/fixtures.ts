/**
 * Real servers for the monitor tests: a static HTTP server with ETag/Last-Modified and fault knobs,
 * vsftpd serving the same directory, and a patch-server directory with a signed index.
 * Every server listens on 127.0.0.1 on a free port and is stopped by its handle / pid.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { spawnProcess, waitFor } from '../../../src/core/index.ts';
import { ed25519PublicKeyBase64, signPatchIndex } from '../../../src/monitor/index.ts';

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-${randomBytes(2).toString('hex')}-`));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface PatchSpec {
  name: string;
  content: string | Buffer;
  categories?: string[];
  published?: string;
  description?: string;
  format?: string;
  /** Lie in the index (for bad-input tests). */
  declaredSha256?: string;
  declaredSize?: number;
}

/** A patch-server directory: patch files under files/, index.json and index.json.sig. */
export class PatchServerDir {
  readonly dir: string;
  readonly privateKey: KeyObject;
  readonly publicKeyBase64: string;
  private entries: Record<string, unknown>[] = [];

  constructor(dir: string) {
    this.dir = dir;
    fs.mkdirSync(path.join(dir, 'files'), { recursive: true, mode: 0o755 });
    const pair = generateKeyPairSync('ed25519');
    this.privateKey = pair.privateKey;
    this.publicKeyBase64 = ed25519PublicKeyBase64(pair.publicKey);
  }

  add(...patches: PatchSpec[]): this {
    for (const p of patches) {
      const data = Buffer.from(p.content);
      const file = path.join(this.dir, 'files', p.name);
      fs.writeFileSync(file, data, { mode: 0o644 });
      this.entries.push({
        name: p.name,
        categories: p.categories ?? ['security'],
        published: p.published ?? new Date().toISOString(),
        description: p.description ?? `Fixes ${p.name}`,
        sha256: p.declaredSha256 ?? createHash('sha256').update(data).digest('hex'),
        size: p.declaredSize ?? data.length,
        format: p.format ?? 'diff',
        file: `files/${p.name}`,
      });
    }
    return this.publish();
  }

  /** Writes index.json and a valid signature (or the given raw text for bad-input tests). */
  publish(options: { index?: string; signature?: string | null } = {}): this {
    const index = Buffer.from(
      options.index ??
        JSON.stringify({ version: 1, generated: new Date().toISOString(), patches: this.entries }),
    );
    fs.writeFileSync(path.join(this.dir, 'index.json'), index, { mode: 0o644 });
    const sigFile = path.join(this.dir, 'index.json.sig');
    if (options.signature === null) fs.rmSync(sigFile, { force: true });
    else
      fs.writeFileSync(sigFile, options.signature ?? signPatchIndex(index, this.privateKey), { mode: 0o644 });
    return this;
  }
}

export interface TestHttpServer {
  url: string;
  port: number;
  requests: { path: string; status: number }[];
  /** Delay every response by this many ms. */
  delayMs: number;
  close(): Promise<void>;
}

/** A static file server with strong ETags and Last-Modified, answering 304 to matching conditionals. */
export async function startHttpServer(root: string): Promise<TestHttpServer> {
  const state = { delayMs: 0 };
  const requests: TestHttpServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const respond = (): void => {
      const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = path.join(root, path.normalize(rel));
      const log = (status: number): void => void requests.push({ path: rel, status });
      if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        log(404);
        res.writeHead(404).end('not found');
        return;
      }
      const data = fs.readFileSync(file);
      const etag = `"${createHash('sha256').update(data).digest('hex').slice(0, 16)}"`;
      const lastModified = fs.statSync(file).mtime.toUTCString();
      if (req.headers['if-none-match'] === etag) {
        log(304);
        res.writeHead(304, { etag }).end();
        return;
      }
      log(200);
      res.writeHead(200, { etag, 'last-modified': lastModified, 'content-length': data.length }).end(data);
    };
    if (state.delayMs > 0) setTimeout(respond, state.delayMs);
    else respond();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    requests,
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(v: number) {
      state.delayMs = v;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** vsftpd (anonymous, read-only) serving `root` on 127.0.0.1. */
export async function startVsftpd(root: string): Promise<{ url: string; close(): Promise<void> }> {
  const port = await freePort();
  const pasv = 40000 + Math.floor(Math.random() * 20000);
  const confDir = tempDir('us-ftpconf');
  const conf = path.join(confDir, 'vsftpd.conf');
  fs.mkdirSync('/var/run/vsftpd/empty', { recursive: true });
  fs.writeFileSync(
    conf,
    [
      'listen=YES',
      'listen_ipv6=NO',
      'listen_address=127.0.0.1',
      `listen_port=${port}`,
      'anonymous_enable=YES',
      'no_anon_password=YES',
      'local_enable=NO',
      'write_enable=NO',
      `anon_root=${root}`,
      'pasv_enable=YES',
      'pasv_address=127.0.0.1',
      `pasv_min_port=${pasv}`,
      `pasv_max_port=${pasv + 20}`,
      'background=NO',
      'secure_chroot_dir=/var/run/vsftpd/empty',
      'seccomp_sandbox=NO',
      'connect_from_port_20=NO',
      'xferlog_enable=NO',
      'dirmessage_enable=NO',
      'ftp_username=ftp',
      `vsftpd_log_file=${path.join(confDir, 'vsftpd.log')}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const proc = spawnProcess(['vsftpd', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const up = await waitFor(
    () =>
      new Promise<true | undefined>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(undefined));
      }),
    { timeoutMs: 5000, intervalMs: 50 },
  );
  const close = async (): Promise<void> => {
    proc.child.kill('SIGTERM');
    await proc.done;
    fs.rmSync(confDir, { recursive: true, force: true });
  };
  if (!up) {
    await close();
    throw new Error(`vsftpd did not start on port ${port}`);
  }
  return { url: `ftp://127.0.0.1:${port}/`, close };
}
