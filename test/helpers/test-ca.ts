/**
 * A throwaway certificate authority made by a test with openssl: a CA certificate and a server
 * certificate for 127.0.0.1 / localhost signed by it, plus a second, unrelated self-signed
 * certificate a client must refuse. Everything lives in one temp directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec } from '../../src/core/index.ts';

export interface TestCa {
  dir: string;
  /** PEM files. */
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A self-signed certificate for the same names, not signed by the CA. */
  rogueCert: string;
  rogueKey: string;
}

export async function createTestCa(dir: string): Promise<TestCa> {
  const f = (name: string): string => path.join(dir, name);
  const days = ['-days', '2'];
  await exec([
    'openssl',
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    ...days,
    '-subj',
    '/CN=understudy test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await exec([
    'openssl',
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  fs.writeFileSync(
    f('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  await exec([
    'openssl',
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.pem'),
    ...days,
    '-extfile',
    f('server.ext'),
  ]);
  await exec([
    'openssl',
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('rogue.key'),
    '-out',
    f('rogue.pem'),
    ...days,
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  for (const key of ['server.key', 'rogue.key']) fs.chmodSync(f(key), 0o644); // dovecot reads it as its own user
  return {
    dir,
    caCert: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    rogueCert: f('rogue.pem'),
    rogueKey: f('rogue.key'),
  };
}
