/**
 * The host's configured apt sources (`/etc/apt/sources.list`, one-line `*.list` and deb822 `*.sources`
 * in `/etc/apt/sources.list.d`), read so that a feed can follow what the host already trusts. The
 * security archive is the source whose suite ends in `-security` (bookworm and later) or `/updates`
 * (before bullseye), as Debian's installer writes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isErrno } from '../core/index.ts';
import { parseDeb822 } from './apt-index.ts';

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
  /** The keyring of `Signed-By` / `[signed-by=…]`; null when the source has none (apt's trusted.gpg). */
  signedBy: string | null;
  /** The file it was read from. */
  file: string;
}

const maxSourcesFileBytes = 1024 * 1024;

function readSmall(file: string): string | null {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile() || stat.size > maxSourcesFileBytes) return null;
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return null;
    throw error;
  }
}

/** `deb [opts] uri suite comp…` lines; `deb-src` and comments skipped. */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '')?.[1] ?? null;
    out.push({
      uri: m[2] as string,
      suite: m[3] as string,
      components: (m[4] ?? '').split(/\s+/).filter(Boolean),
      signedBy,
      file,
    });
  }
  return out;
}

/** deb822 stanzas (`Types: deb`, several URIs and Suites each); `Enabled: no` skipped. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  const uncommented = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n');
  for (const stanza of parseDeb822(uncommented)) {
    const words = (key: string): string[] => (stanza.get(key) ?? '').split(/\s+/).filter(Boolean);
    if (!words('Types').includes('deb') || stanza.get('Enabled')?.toLowerCase() === 'no') continue;
    const signed = stanza.get('Signed-By')?.trim() ?? '';
    // Signed-By is a keyring path, or an inline key block (not usable as a gpgv keyring here).
    const signedBy = signed.startsWith('/') && !signed.includes('\n') ? signed : null;
    for (const uri of words('URIs'))
      for (const suite of words('Suites'))
        out.push({ uri, suite, components: words('Components'), signedBy, file });
  }
  return out;
}

/** Every `deb` source of the host, in apt's reading order. */
export function readHostSources(etcApt = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const main = path.join(etcApt, 'sources.list');
  const mainText = readSmall(main);
  if (mainText !== null) out.push(...parseOneLineSources(mainText, main));
  const dir = path.join(etcApt, 'sources.list.d');
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).sort();
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    if (!/^[A-Za-z0-9_.-]+\.(list|sources)$/.test(name)) continue;
    const text = readSmall(file);
    if (text === null) continue;
    out.push(...(name.endsWith('.list') ? parseOneLineSources(text, file) : parseDeb822Sources(text, file)));
  }
  return out;
}

/** True for the security archive's suite: `bookworm-security`, or `buster/updates` before bullseye. */
export function isSecuritySuite(suite: string): boolean {
  return /-security$/.test(suite) || /\/updates$/.test(suite);
}
