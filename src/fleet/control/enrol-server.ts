/**
 * Enrolment over the network: the control plane serves `POST /v1/enrol` over HTTPS with a server
 * certificate of the fleet CA (the agent verifies it against the CA certificate it was given). The
 * agent sends its host name, its one-time token and a CSR made on the host (its private key never
 * leaves the host); it gets back its client certificate and where PostgreSQL is, where from then on
 * it works with that certificate (mutual TLS, row-level security).
 *
 * The server also asks for a client certificate: `GET /v1/whoami` answers only to a certificate
 * of the fleet CA that is not revoked, with the host it belongs to, so an agent can check that its
 * enrolment holds.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type pg from 'pg';
import { UnderstudyError, isUnderstudyError } from '../../core/index.ts';
import { issueCertificate, type FleetCa } from './ca.ts';
import type { DbEndpoint } from './db.ts';
import { audit, enrolHost } from './enrol.ts';

export interface EnrolServerOptions {
  db: pg.Pool;
  ca: FleetCa;
  /** Address and port to listen on (port 0: a free one). */
  host: string;
  port?: number;
  /** Where agents find PostgreSQL (sent back with the certificate). */
  database: Omit<DbEndpoint, 'caFile'>;
  /** Where the server's key and certificate are kept (made on first start). */
  tlsDir: string;
}

export interface EnrolServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** What `POST /v1/enrol` answers. */
export interface EnrolResponse {
  host: string;
  role: string;
  certPem: string;
  caPem: string;
  database: Omit<DbEndpoint, 'caFile'>;
}

const maxBody = 64 * 1024;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBody) throw new UnderstudyError('INVALID_ARGUMENT', `request body over ${maxBody} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new UnderstudyError('INVALID_ARGUMENT', 'request body is not JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function statusOf(error: unknown): number {
  if (!isUnderstudyError(error)) return 500;
  if (error.code === 'FLEET_ENROL_REFUSED') return 403;
  if (error.code === 'INVALID_ARGUMENT') return 400;
  return 500;
}

/** The server's key and certificate for `host` (an IP address), made by the fleet CA once. */
async function serverTls(ca: FleetCa, tlsDir: string, host: string): Promise<{ key: string; cert: string }> {
  const name = `enrol-${host.replace(/[^0-9a-zA-Z]/g, '_')}`;
  const keyFile = path.join(tlsDir, `${name}.key`);
  const certFile = path.join(tlsDir, `${name}.crt`);
  if (!fs.existsSync(certFile))
    await issueCertificate(ca, {
      outDir: tlsDir,
      name,
      commonName: host,
      kind: 'server',
      san: `IP:${host}`,
    });
  return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
}

export async function startEnrolServer(options: EnrolServerOptions): Promise<EnrolServer> {
  const tls = await serverTls(options.ca, options.tlsDir, options.host);
  const caPem = fs.readFileSync(options.ca.certFile, 'utf8');
  const server = https.createServer({
    ...tls,
    ca: caPem,
    // Asked for, not required: enrolment comes before the agent has a certificate.
    requestCert: true,
    rejectUnauthorized: false,
    crl: fs.readFileSync(options.ca.crlFile, 'utf8'),
    minVersion: 'TLSv1.2',
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res).catch((error: unknown) => {
      send(res, statusOf(error), {
        error: error instanceof Error ? error.message : String(error),
        ...(isUnderstudyError(error) ? { code: error.code } : {}),
      });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'POST' && req.url === '/v1/enrol') {
      const body = (await readJson(req)) as { host?: unknown; token?: unknown; csrPem?: unknown };
      if (typeof body.host !== 'string' || typeof body.token !== 'string' || typeof body.csrPem !== 'string')
        throw new UnderstudyError('INVALID_ARGUMENT', 'enrolment needs host, token and csrPem (strings)');
      const enrolled = await enrolHost(options.db, options.ca, {
        host: body.host,
        token: body.token,
        csrPem: body.csrPem,
      });
      const answer: EnrolResponse = {
        host: enrolled.host,
        role: enrolled.role,
        certPem: enrolled.certPem,
        caPem,
        database: options.database,
      };
      send(res, 200, answer);
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/whoami') {
      const socket = req.socket as TLSSocket;
      const cert = socket.getPeerCertificate();
      if (!socket.authorized || !cert.subject) {
        await audit(options.db, {
          actor: 'unknown',
          action: 'whoami',
          outcome: 'refused',
          detail: { reason: socket.authorizationError ?? 'no client certificate' },
        });
        send(res, 401, { error: 'a client certificate of the fleet CA is required' });
        return;
      }
      const serial = cert.serialNumber.toUpperCase();
      const row = await options.db.query<{ id: string; revoked_at: Date | null }>(
        'SELECT id, revoked_at FROM fleet.hosts WHERE upper(cert_serial) = $1',
        [serial],
      );
      const host = row.rows[0];
      if (!host || host.revoked_at !== null) {
        await audit(options.db, {
          actor: String(cert.subject.CN),
          action: 'whoami',
          outcome: 'refused',
          detail: { serial, reason: host ? 'revoked' : 'unknown certificate' },
        });
        send(res, 403, { error: `certificate ${serial} is revoked or unknown` });
        return;
      }
      send(res, 200, { host: host.id, role: cert.subject.CN, serial });
      return;
    }
    send(res, 404, { error: `no ${req.method ?? ''} ${req.url ?? ''}` });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `https://${options.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
