/**
 * Image recipes. `busybox`: a minimal system (static busybox, its init, the start-up scripts, Node.js and
 * the demo service). `debian`: Debian bookworm minbase from debootstrap (cached), so dpkg patches can be
 * applied, with the same init, scripts and demo service.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec } from '../core/index.ts';
import { installBusybox, installNode, installUnderstudyFiles, writeBaseEtc } from './rootfs.ts';
import { debootstrapLine, type ImageProgress } from './progress.ts';

export interface RecipeContext {
  root: string;
  cacheDir: string;
  progress: ImageProgress;
  signal?: AbortSignal;
}

export type RecipeName = 'busybox' | 'debian';
export const recipeNames: readonly RecipeName[] = ['busybox', 'debian'];

async function buildBusybox(ctx: RecipeContext): Promise<void> {
  ctx.progress('installing busybox and its init', 'install');
  await installBusybox(ctx.root, { links: true });
  writeBaseEtc(ctx.root);
  ctx.progress('installing Node.js and the demo service', 'install');
  await installNode(ctx.root);
  installUnderstudyFiles(ctx.root);
}

/** Debian mirror for debootstrap: UNDERSTUDY_DEBIAN_MIRROR, else the host's own apt source. */
function debianMirror(): string {
  if (process.env.UNDERSTUDY_DEBIAN_MIRROR) return process.env.UNDERSTUDY_DEBIAN_MIRROR;
  try {
    const sources = fs.readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8');
    const uri = /^URIs:\s*(\S+)/m.exec(sources)?.[1];
    if (uri && !uri.includes('security')) return uri;
  } catch {
    // No deb822 sources file: use the default mirror.
  }
  return 'http://deb.debian.org/debian';
}

async function buildDebian(ctx: RecipeContext): Promise<void> {
  const suite = process.env.UNDERSTUDY_DEBIAN_SUITE ?? 'bookworm';
  const tarball = path.join(ctx.cacheDir, `debootstrap-${suite}-minbase.tar`);
  if (!fs.existsSync(tarball)) {
    ctx.progress(`debootstrap ${suite} (minbase) — cached for later builds`, 'debootstrap');
    fs.mkdirSync(ctx.cacheDir, { recursive: true });
    const work = path.join(ctx.cacheDir, `debootstrap-${suite}.work-${process.pid}`);
    try {
      await exec(['debootstrap', '--variant=minbase', suite, work, debianMirror()], {
        timeoutMs: 20 * 60_000,
        signal: ctx.signal,
        onStdoutLine: (line) => debootstrapLine(line, ctx.progress),
      });
      ctx.progress('caching the debootstrapped tree', 'debootstrap-cache-store');
      await exec(['tar', '-C', work, '--numeric-owner', '--xattrs', '-cf', `${tarball}.tmp`, '.'], {
        timeoutMs: 10 * 60_000,
      });
      fs.renameSync(`${tarball}.tmp`, tarball);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
      fs.rmSync(`${tarball}.tmp`, { force: true });
    }
  } else ctx.progress(`using cached debootstrap ${suite}`, 'debootstrap-cached');
  ctx.progress('unpacking the base system', 'unpack');
  await exec(['tar', '-C', ctx.root, '--numeric-owner', '--xattrs', '-xf', tarball], {
    timeoutMs: 10 * 60_000,
  });
  ctx.progress('installing busybox init, Node.js and the demo service', 'install');
  await installBusybox(ctx.root, { links: false });
  fs.writeFileSync(path.join(ctx.root, 'etc/os-release.understudy'), 'understudy debian image\n');
  await installNode(ctx.root);
  installUnderstudyFiles(ctx.root);
}

export const recipes: Record<RecipeName, (ctx: RecipeContext) => Promise<void>> = {
  busybox: buildBusybox,
  debian: buildDebian,
};
