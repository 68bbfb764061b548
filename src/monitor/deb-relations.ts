/**
 * Debian package relations (deb-control(5) "Package interrelationship fields"): Depends, Pre-Depends,
 * Breaks, Conflicts, Replaces and Provides as they appear in a binary Packages index and in dpkg's status file.
 * `a (>= 1) | b, c:any` is two clauses; the first is satisfied by a or b.
 */
import { compareDebianVersions } from './debian-version.ts';

export type RelationOp = '<<' | '<=' | '=' | '>=' | '>>';

export interface Relation {
  /** The package name, without an architecture qualifier (`:any`, `:native`, `:amd64`). */
  name: string;
  op: RelationOp | null;
  version: string | null;
  /** The relation as written, for messages. */
  text: string;
}

/** Alternatives: satisfied when any one of them is. */
export type Clause = Relation[];

const relationPattern =
  /^([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^\s)]+)\s*\))?/;

function parseRelation(text: string): Relation | null {
  // Architecture restrictions ([amd64]) and build profiles (<!nocheck>) do not occur in binary
  // indexes; dropped if they do.
  const bare = text
    .replace(/\[[^\]]*\]/g, '')
    .replace(/<[^>]*>\s*$/g, '')
    .trim();
  const m = relationPattern.exec(bare);
  if (!m) return null;
  const rawOp = m[2];
  // "<" and ">" are the obsolete spellings of "<=" and ">=".
  const op = rawOp === '<' ? '<=' : rawOp === '>' ? '>=' : ((rawOp ?? null) as RelationOp | null);
  return { name: m[1] as string, op, version: m[3] ?? null, text: bare };
}

/** Parses a relation field into clauses; unparsable alternatives are dropped (never satisfiable). */
export function parseRelations(field: string | undefined): Clause[] {
  if (!field) return [];
  const clauses: Clause[] = [];
  for (const part of field.split(',')) {
    if (part.trim() === '') continue;
    const alternatives = part
      .split('|')
      .map((a) => parseRelation(a.trim()))
      .filter((r): r is Relation => r !== null);
    if (alternatives.length > 0) clauses.push(alternatives);
  }
  return clauses;
}

/** True when `version` satisfies `op relationVersion` (no op: any version). */
export function versionSatisfies(version: string, relation: Pick<Relation, 'op' | 'version'>): boolean {
  if (relation.op === null || relation.version === null) return true;
  const c = compareDebianVersions(version, relation.version);
  switch (relation.op) {
    case '<<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '=':
      return c === 0;
    case '>=':
      return c >= 0;
    case '>>':
      return c > 0;
  }
}

/** What a system has, as relations see it: a package at a version, and what it provides. */
export interface RelationTarget {
  name: string;
  version: string;
  provides: Clause[];
}

/**
 * True when `relation` is satisfied by one of `world`: the package itself at a matching version, or a
 * package providing the name (a versioned relation needs a versioned provide that matches).
 */
export function relationSatisfied(
  relation: Relation,
  world: (name: string) => RelationTarget | undefined,
  providers: (name: string) => readonly RelationTarget[],
): boolean {
  const own = world(relation.name);
  if (own && versionSatisfies(own.version, relation)) return true;
  for (const p of providers(relation.name)) {
    for (const clause of p.provides) {
      for (const provided of clause) {
        if (provided.name !== relation.name) continue;
        if (relation.op === null) return true;
        if (provided.version !== null && versionSatisfies(provided.version, relation)) return true;
      }
    }
  }
  return false;
}

/** The clause as written, for messages. */
export function clauseText(clause: Clause): string {
  return clause.map((r) => r.text).join(' | ');
}

/**
 * The packages of `candidates` that `relation` (of a Conflicts, Breaks or Replaces field of `self`)
 * hits: the package of that name at a matching version, or another package providing the name (a
 * versioned relation hits only a versioned provide that matches). A package never hits itself
 * (Debian policy 7.6.2: a package may conflict with a virtual package it provides).
 */
export function relationHits(
  relation: Relation,
  self: string,
  candidates: readonly RelationTarget[],
): RelationTarget[] {
  return candidates.filter((c) => {
    if (c.name === self) return false;
    if (c.name === relation.name) return versionSatisfies(c.version, relation);
    return c.provides.some((clause) =>
      clause.some(
        (p) =>
          p.name === relation.name &&
          (relation.op === null || (p.version !== null && versionSatisfies(p.version, relation))),
      ),
    );
  });
}
