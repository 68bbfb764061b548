/** Parsing Debian repository indexes: the (verified) Release text and Packages stanzas. */
import { UnderstudyError, checkRelativePath } from '../core/index.ts';

export type Stanza = Map<string, string>;

/** Parses deb822 paragraphs; continuation lines are joined with "\n". */
export function parseDeb822(text: string): Stanza[] {
  const out: Stanza[] = [];
  let current: Stanza = new Map();
  let last: string | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current.size > 0) out.push(current);
      current = new Map();
      last = null;
      continue;
    }
    if (/^[ \t]/.test(line)) {
      if (last) current.set(last, `${current.get(last) ?? ''}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    current.set(last, line.slice(colon + 1).trim());
  }
  if (current.size > 0) out.push(current);
  return out;
}

export interface ReleaseInfo {
  suite: string | null;
  codename: string | null;
  date: Date;
  validUntil: Date | null;
  /** path → {sha256, size} */
  files: Map<string, { sha256: string; size: number }>;
}

export function parseRelease(text: string, url: string): ReleaseInfo {
  const stanza = parseDeb822(text)[0];
  const bad = (why: string): UnderstudyError =>
    new UnderstudyError('FEED_INDEX_INVALID', `The Release file ${url} ${why}`);
  if (!stanza) throw bad('is empty');
  const dateText = stanza.get('Date');
  const date = dateText ? new Date(dateText) : null;
  if (!date || Number.isNaN(date.getTime())) throw bad('has no valid Date');
  const vu = stanza.get('Valid-Until');
  const validUntil = vu ? new Date(vu) : null;
  if (validUntil && Number.isNaN(validUntil.getTime())) throw bad('has an invalid Valid-Until');
  const files = new Map<string, { sha256: string; size: number }>();
  for (const line of (stanza.get('SHA256') ?? '').split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length === 3 && /^[0-9a-f]{64}$/.test(parts[0] ?? ''))
      files.set(parts[2] ?? '', { sha256: parts[0] ?? '', size: Number(parts[1]) });
  }
  if (files.size === 0) throw bad('lists no SHA256 checksums');
  return {
    suite: stanza.get('Suite') ?? null,
    codename: stanza.get('Codename') ?? null,
    date,
    validUntil,
    files,
  };
}

/** The source package a binary stanza was built from: `Source: name` or `Source: name (version)`. */
export function sourceOf(
  stanza: Stanza,
  pkg: string,
  version: string,
): { source: string; sourceVersion: string } {
  const field = stanza.get('Source');
  if (!field) return { source: pkg, sourceVersion: version };
  const m = /^(\S+)(?:\s*\(([^)\s]+)\))?/.exec(field.trim());
  return { source: m?.[1] ?? pkg, sourceVersion: m?.[2] ?? version };
}

/** The relation fields of a binary package, as written (see deb-relations.ts). */
export interface PackageRelations {
  depends: string;
  preDepends: string;
  breaks: string;
  provides: string;
  conflicts: string;
  replaces: string;
}

export function relationsOf(stanza: Stanza): PackageRelations {
  return {
    depends: stanza.get('Depends') ?? '',
    preDepends: stanza.get('Pre-Depends') ?? '',
    breaks: stanza.get('Breaks') ?? '',
    provides: stanza.get('Provides') ?? '',
    conflicts: stanza.get('Conflicts') ?? '',
    replaces: stanza.get('Replaces') ?? '',
  };
}

export interface PackageEntry extends PackageRelations {
  package: string;
  version: string;
  architecture: string;
  filename: string;
  size: number;
  sha256: string;
  description: string;
  source: string;
  sourceVersion: string;
}

export function parsePackages(text: string, url: string): PackageEntry[] {
  const out: PackageEntry[] = [];
  for (const s of parseDeb822(text)) {
    const pkg = s.get('Package') ?? '';
    const version = s.get('Version') ?? '';
    const entry: PackageEntry = {
      package: pkg,
      version,
      architecture: s.get('Architecture') ?? '',
      filename: s.get('Filename') ?? '',
      size: Number(s.get('Size') ?? NaN),
      sha256: s.get('SHA256') ?? '',
      description: s.get('Description') ?? '',
      ...sourceOf(s, pkg, version),
      ...relationsOf(s),
    };
    if (
      !entry.package ||
      !entry.version ||
      !entry.filename ||
      !/^[0-9a-f]{64}$/.test(entry.sha256) ||
      !Number.isFinite(entry.size)
    ) {
      throw new UnderstudyError(
        'FEED_INDEX_INVALID',
        `The Packages index ${url} has an incomplete stanza${entry.package ? ` for ${entry.package}` : ''}`,
      );
    }
    checkRelativePath(entry.filename, {
      what: `The Packages index ${url} points ${entry.package} outside the repository:`,
      code: 'FEED_INDEX_INVALID',
    });
    out.push(entry);
  }
  return out;
}
