/**
 * The agent's side of enrolment: makes its private key and a CSR on the host, sends the CSR with
 * the one-time token to the control plane's HTTPS endpoint (whose certificate must be signed by the
 * fleet CA certificate the operator gave the agent), and keeps what comes back in its directory:
 * agent.key (0600), agent.crt, ca.crt and agent.json (host, role, where PostgreSQL is).
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { UnderstudyError } from '../../core/index.ts';
import { createKeyAndCsr } from '../control/index.ts';
import type { ClientIdentity, DbEndpoint, EnrolResponse } from '../control/index.ts';

export interface AgentConfig {
  host: string;
  /** The enrolment endpoint it enrolled with. */
  url: string;
  endpoint: DbEndpoint;
  identity: ClientIdentity;
}

export const agentConfigFile = (dir: string): string => path.join(dir, 'agent.json');

export function readAgentConfig(dir: string): AgentConfig {
  const file = agentConfigFile(dir);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as AgentConfig;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UnderstudyError('FLEET_NOT_FOUND', `${file} does not exist: this agent is not enrolled`, {
        hint: 'Enrol it first: `understudy agent enrol --url https://<control>:<port> --ca <ca.crt> --host <name> --token <token>`.',
      });
    throw error;
  }
}

/** POSTs JSON over HTTPS, trusting only `caPem`; resolves with the status and the parsed answer. */
function postJson(url: string, caPem: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        agent: false,
        ca: caPem,
        rejectUnauthorized: true,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(raw) });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { error: raw } });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 30 s`)));
    req.on('error', reject);
    req.end(text);
  });
}

/** Enrols this host: key and CSR made here, certificate from the control plane; returns the config. */
export async function enrolOverHttps(options: {
  url: string;
  caFile: string;
  host: string;
  token: string;
  dir: string;
}): Promise<AgentConfig> {
  fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(options.dir, 'agent.key');
  const certFile = path.join(options.dir, 'agent.crt');
  const caFile = path.join(options.dir, 'ca.crt');
  const caPem = fs.readFileSync(options.caFile, 'utf8');
  const csrPem = await createKeyAndCsr({ dir: options.dir }, { keyFile, commonName: options.host });
  const endpointUrl = `${options.url.replace(/\/$/, '')}/v1/enrol`;
  let answer: { status: number; body: unknown };
  try {
    answer = await postJson(endpointUrl, caPem, {
      host: options.host,
      token: options.token,
      csrPem,
    });
  } catch (error) {
    throw new UnderstudyError(
      'FLEET_ENROL_UNREACHABLE',
      `enrolment at ${endpointUrl} failed: ${(error as Error).message}`,
      {
        cause: error,
        hint: 'Check the URL, that `understudy control run --enrol-listen` serves it, and that --ca is the fleet CA certificate.',
      },
    );
  }
  if (answer.status !== 200) {
    const reason = (answer.body as { error?: string }).error ?? `HTTP ${answer.status}`;
    throw new UnderstudyError(
      'FLEET_ENROL_REFUSED',
      `enrolment of ${options.host} at ${endpointUrl} refused: ${reason}`,
      {
        hint: 'Make a new token with `understudy control token <host>`: a token works once, for its host, until it expires.',
      },
    );
  }
  const enrolled = answer.body as EnrolResponse;
  fs.writeFileSync(certFile, enrolled.certPem);
  fs.writeFileSync(caFile, enrolled.caPem);
  const config: AgentConfig = {
    host: enrolled.host,
    url: options.url,
    endpoint: { ...enrolled.database, caFile },
    identity: { user: enrolled.role, certFile, keyFile },
  };
  fs.writeFileSync(agentConfigFile(options.dir), `${JSON.stringify(config, null, 2)}\n`);
  return config;
}
