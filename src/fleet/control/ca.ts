/**
 * The fleet's small certificate authority, kept in one directory and driven through `openssl`
 * (node:crypto cannot sign X.509 certificates). It issues the PostgreSQL server's certificate,
 * the control plane's client certificate and one client certificate per agent (CN = the agent's
 * PostgreSQL role), and keeps a CRL that the server reloads when a certificate is revoked.
 *
 * Layout of the directory: ca.key (0600), ca.crt, ca.crl, openssl.cnf, index.txt, serial, crlnumber,
 * issued/<name>.crt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec, UnderstudyError } from '../../core/index.ts';

export interface FleetCa {
  dir: string;
  certFile: string;
  keyFile: string;
  crlFile: string;
}

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  /** Serial number, hex, as openssl prints it. */
  serial: string;
}

const caDays = 3650;
const leafDays = 825;

function openSslConfig(dir: string): string {
  return [
    '[ ca ]',
    'default_ca = fleet',
    '[ fleet ]',
    `dir = ${dir}`,
    'database = $dir/index.txt',
    'serial = $dir/serial',
    'crlnumber = $dir/crlnumber',
    'new_certs_dir = $dir/issued',
    'certificate = $dir/ca.crt',
    'private_key = $dir/ca.key',
    'default_md = sha256',
    `default_days = ${leafDays}`,
    'default_crl_days = 3650',
    'policy = any_name',
    'unique_subject = no',
    'copy_extensions = none',
    'email_in_dn = no',
    '[ any_name ]',
    'commonName = supplied',
    '[ client ]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = clientAuth',
    '[ server ]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = $ENV::FLEET_SAN',
    '',
  ].join('\n');
}

function caPaths(dir: string): FleetCa {
  return {
    dir,
    certFile: path.join(dir, 'ca.crt'),
    keyFile: path.join(dir, 'ca.key'),
    crlFile: path.join(dir, 'ca.crl'),
  };
}

async function openssl(
  ca: FleetCa,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<string> {
  try {
    const result = await exec(['openssl', ...args], { env: { FLEET_SAN: 'DNS:localhost', ...env } });
    return result.stdout;
  } catch (error) {
    throw new UnderstudyError('FLEET_CA_FAILED', `openssl ${args[0] ?? ''} failed for the CA in ${ca.dir}`, {
      cause: error,
      hint: error instanceof Error ? error.message : undefined,
    });
  }
}

/** Opens an existing CA directory; throws FLEET_CA_FAILED when it was not made by createCa. */
export function openCa(dir: string): FleetCa {
  const ca = caPaths(path.resolve(dir));
  if (!fs.existsSync(ca.certFile) || !fs.existsSync(ca.keyFile))
    throw new UnderstudyError('FLEET_CA_FAILED', `${ca.dir} holds no fleet CA (ca.crt, ca.key)`, {
      hint: 'Make one with `understudy control ca --dir <dir>`.',
    });
  return ca;
}

/** Makes a new CA (EC P-256 key, self-signed) and an empty CRL. Refuses to overwrite an existing one. */
export async function createCa(dir: string, name = 'understudy fleet CA'): Promise<FleetCa> {
  const ca = caPaths(path.resolve(dir));
  if (fs.existsSync(ca.keyFile))
    throw new UnderstudyError('FLEET_CA_FAILED', `${ca.dir} already holds a CA`, {
      hint: 'Use the existing CA, or choose another directory.',
    });
  fs.mkdirSync(path.join(ca.dir, 'issued'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(ca.dir, 'openssl.cnf'), openSslConfig(ca.dir));
  fs.writeFileSync(path.join(ca.dir, 'index.txt'), '');
  fs.writeFileSync(path.join(ca.dir, 'serial'), '1000\n');
  fs.writeFileSync(path.join(ca.dir, 'crlnumber'), '1000\n');
  await openssl(ca, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', ca.keyFile]);
  fs.chmodSync(ca.keyFile, 0o600);
  await openssl(ca, [
    'req',
    '-x509',
    '-new',
    '-key',
    ca.keyFile,
    '-sha256',
    '-days',
    String(caDays),
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    ca.certFile,
  ]);
  await regenerateCrl(ca);
  return ca;
}

/** Makes a private key and a certificate signing request for `commonName` (what an agent does locally). */
export async function createKeyAndCsr(
  ca: Pick<FleetCa, 'dir'>,
  options: { keyFile: string; commonName: string },
): Promise<string> {
  await openssl(ca as FleetCa, [
    'ecparam',
    '-name',
    'prime256v1',
    '-genkey',
    '-noout',
    '-out',
    options.keyFile,
  ]);
  fs.chmodSync(options.keyFile, 0o600);
  return openssl(ca as FleetCa, [
    'req',
    '-new',
    '-key',
    options.keyFile,
    '-subj',
    `/CN=${options.commonName}`,
  ]);
}

/**
 * Signs a CSR as a client or server certificate. The subject is replaced by `commonName`, so a CSR
 * cannot ask for another name than the one the caller decided.
 */
export async function signCsr(
  ca: FleetCa,
  options: { csrPem: string; commonName: string; kind: 'client' | 'server'; san?: string },
): Promise<{ certPem: string; serial: string }> {
  const work = fs.mkdtempSync(path.join(ca.dir, '.csr-'));
  try {
    const csrFile = path.join(work, 'req.csr');
    const certFile = path.join(work, 'out.crt');
    fs.writeFileSync(csrFile, options.csrPem);
    await openssl(
      ca,
      [
        'ca',
        '-batch',
        '-config',
        path.join(ca.dir, 'openssl.cnf'),
        '-extensions',
        options.kind,
        '-subj',
        `/CN=${options.commonName}`,
        '-notext',
        '-in',
        csrFile,
        '-out',
        certFile,
      ],
      options.san ? { FLEET_SAN: options.san } : {},
    );
    const certPem = fs.readFileSync(certFile, 'utf8');
    const serial = (await openssl(ca, ['x509', '-in', certFile, '-noout', '-serial']))
      .trim()
      .replace(/^serial=/, '');
    return { certPem, serial };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Issues a key and certificate into `outDir` as <name>.key / <name>.crt (server and control-plane use). */
export async function issueCertificate(
  ca: FleetCa,
  options: { outDir: string; name: string; commonName: string; kind: 'client' | 'server'; san?: string },
): Promise<IssuedCertificate> {
  fs.mkdirSync(options.outDir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(options.outDir, `${options.name}.key`);
  const certFile = path.join(options.outDir, `${options.name}.crt`);
  const csrPem = await createKeyAndCsr(ca, { keyFile, commonName: options.commonName });
  const signed = await signCsr(ca, {
    csrPem,
    commonName: options.commonName,
    kind: options.kind,
    san: options.san,
  });
  fs.writeFileSync(certFile, signed.certPem);
  return { certFile, keyFile, serial: signed.serial };
}

/** Marks the certificate with `serial` revoked and rewrites the CRL. */
export async function revokeCertificate(ca: FleetCa, serial: string): Promise<void> {
  const issued = path.join(ca.dir, 'issued', `${serial.toUpperCase()}.pem`);
  if (!fs.existsSync(issued))
    throw new UnderstudyError(
      'FLEET_CA_FAILED',
      `the CA in ${ca.dir} never issued a certificate with serial ${serial}`,
      {
        hint: 'List issued certificates in its issued/ folder.',
      },
    );
  await openssl(ca, ['ca', '-batch', '-config', path.join(ca.dir, 'openssl.cnf'), '-revoke', issued]);
  await regenerateCrl(ca);
}

async function regenerateCrl(ca: FleetCa): Promise<void> {
  await openssl(ca, [
    'ca',
    '-batch',
    '-config',
    path.join(ca.dir, 'openssl.cnf'),
    '-gencrl',
    '-out',
    ca.crlFile,
  ]);
}
