/**
 * What every understudy image holds besides its base system: busybox init with the start-up scripts
 * of assets/rootfs, the control-channel tool, Node.js (copied from the host with the libraries it
 * needs) and the demo service.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../core/index.ts';

export const assetsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../assets');

/** Copies a host file to the same path inside root (creating directories), keeping its mode. */
function copyHostFile(root: string, hostFile: string, targetPath = hostFile): void {
  const target = path.join(root, targetPath);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(fs.realpathSync(hostFile), target);
  fs.chmodSync(target, fs.statSync(fs.realpathSync(hostFile)).mode & 0o7777);
}

/** Shared libraries a host binary needs (from ldd), as absolute paths. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await exec(['ldd', binary]);
  return out.stdout
    .split('\n')
    .map((line) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((p): p is string => p !== undefined);
}

/** Installs Node.js at /usr/local/bin/node with the shared libraries it needs (those the image lacks). */
export async function installNode(root: string): Promise<void> {
  const node = fs.realpathSync(process.execPath);
  copyHostFile(root, node, '/usr/local/bin/node');
  for (const lib of await sharedLibraries(node)) {
    if (!fs.existsSync(path.join(root, lib))) copyHostFile(root, lib);
  }
}

/** Copies assets/rootfs (inittab, rcS, rcK, rc.d scripts, understudy-report) and the demo service. */
export function installUnderstudyFiles(root: string): void {
  fs.cpSync(path.join(assetsDir, 'rootfs'), root, { recursive: true, force: true, preserveTimestamps: true });
  fs.mkdirSync(path.join(root, 'opt/demo'), { recursive: true });
  fs.copyFileSync(path.join(assetsDir, 'demo-service/server.mjs'), path.join(root, 'opt/demo/server.mjs'));
  for (const dir of ['srv', 'run', 'tmp', 'var/log', 'proc', 'sys', 'dev', 'root'])
    fs.mkdirSync(path.join(root, dir), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
}

/** Installs the static busybox and its applet links; makes busybox the init. */
export async function installBusybox(root: string, options: { links: boolean }): Promise<void> {
  copyHostFile(root, '/bin/busybox', '/bin/busybox');
  if (options.links) {
    for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin'])
      fs.mkdirSync(path.join(root, dir), { recursive: true });
    await exec(['chroot', root, '/bin/busybox', '--install', '-s']);
  }
  fs.mkdirSync(path.join(root, 'sbin'), { recursive: true });
  fs.rmSync(path.join(root, 'sbin/init'), { force: true });
  fs.symlinkSync('/bin/busybox', path.join(root, 'sbin/init'));
}

export function writeBaseEtc(root: string): void {
  const etc = path.join(root, 'etc');
  fs.mkdirSync(etc, { recursive: true });
  const files: Record<string, string> = {
    passwd: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    group: 'root:x:0:\nnogroup:x:65534:\n',
    hosts: '127.0.0.1 localhost\n',
    'os-release': 'NAME="understudy busybox"\nID=understudy-busybox\n',
  };
  for (const [name, content] of Object.entries(files)) {
    if (!fs.existsSync(path.join(etc, name)) || name === 'os-release')
      fs.writeFileSync(path.join(etc, name), content);
  }
}
