/**
 * Which binary packages of a system must be upgraded together, from what it has installed and what a
 * verified apt feed offers. Pure logic (no I/O): the caller reads the dpkg status and the Packages
 * indexes.
 *
 * The set starts with every installed package the feed has in a newer version, and is closed over:
 * - same source: a package built from the same source as one that moves, installed at an older source
 *   version, moves to the feed's build of that same source version (nginx with nginx-common, libssl3 with
 *   openssl);
 * - dependencies of the new versions (Pre-Depends, Depends) that the system after the upgrade would not
 *   satisfy: an installed package too old for them moves, a package not installed is added;
 * - reverse dependencies: an installed package whose dependency the upgrade breaks (an exact `(= version)`
 *   on a package that moves) moves too;
 * - Breaks: an installed package that a new version breaks moves to a version it does not break.
 * A package on hold never moves; when the closure needs it, that is an error.
 */
import { UnderstudyError } from '../core/index.ts';
import type { PackageEntry } from './apt-index.ts';
import { compareDebianVersions } from './debian-version.ts';
import {
  clauseText,
  parseRelations,
  relationSatisfied,
  versionSatisfies,
  type Clause,
  type Relation,
  type RelationTarget,
} from './deb-relations.ts';
import type { InstalledPackage } from './dpkg-status.ts';

/** Why a package is in the upgrade set. */
export type UpgradeReason =
  /** The feed has a newer version of this installed package. */
  | { kind: 'newer' }
  /** Built from `source`, which moves to `sourceVersion` with `with`. */
  | { kind: 'same-source'; source: string; sourceVersion: string; with: string }
  /** `of`'s new version needs `relation`, which the installed version does not satisfy. */
  | { kind: 'dependency'; of: string; relation: string }
  /** `of`'s new version needs `relation`; not installed at all. */
  | { kind: 'new-dependency'; of: string; relation: string }
  /** The installed version needs `relation`, which the upgrade of `on` no longer satisfies. */
  | { kind: 'reverse-dependency'; on: string; relation: string }
  /** `by`'s new version breaks the installed version (`relation`). */
  | { kind: 'breaks'; by: string; relation: string };

export interface PlannedUpgrade {
  package: string;
  architecture: string;
  /** The installed version; null for a new dependency. */
  installed: string | null;
  candidate: string;
  source: string;
  sourceVersion: string;
  reasons: UpgradeReason[];
  /** The feed's entry: file, size and sha256 of the .deb. */
  entry: PackageEntry;
}

export interface UpgradePlan {
  /** In the order found: the newer packages first, then what they pulled in. */
  upgrades: PlannedUpgrade[];
  /** Held packages the feed has a newer version of (left alone). */
  held: string[];
}

export interface PlanUpgradeOptions {
  installed: readonly InstalledPackage[];
  /** Every entry of the verified Packages indexes (several feeds may be merged). */
  available: readonly PackageEntry[];
  /** The system's architecture (dpkg --print-architecture): packages of it and of `all` count. */
  architecture: string;
  /** Names the system for messages (the LC). */
  system: string;
  /**
   * Start the set from these installed packages only (one security fix, e.g. nginx), instead of every
   * installed package the feed has newer; the set is still closed over as above. Default: all.
   */
  only?: readonly string[];
}

interface Node extends RelationTarget {
  depends: Clause[];
  breaks: Clause[];
}

function describeReason(r: UpgradeReason): string {
  switch (r.kind) {
    case 'newer':
      return 'newer version in the feed';
    case 'same-source':
      return `built from ${r.source}, which moves to ${r.sourceVersion} with ${r.with}`;
    case 'dependency':
      return `${r.of} needs ${r.relation}`;
    case 'new-dependency':
      return `new dependency of ${r.of} (${r.relation})`;
    case 'reverse-dependency':
      return `needs ${r.relation}, no longer met once ${r.on} moves`;
    case 'breaks':
      return `${r.by} breaks ${r.relation}`;
  }
}

export { describeReason as describeUpgradeReason };

/** Throws UPDATE_PACKAGE_NOT_IN_FEED or UPDATE_DEPENDENCY_UNSATISFIABLE (see above for the rules). */
export function planUpgrade(options: PlanUpgradeOptions): UpgradePlan {
  const { system } = options;
  const archOk = (arch: string): boolean => arch === options.architecture || arch === 'all';
  const installed = new Map<string, InstalledPackage>();
  for (const p of options.installed) if (archOk(p.architecture)) installed.set(p.name, p);
  const byName = new Map<string, PackageEntry[]>();
  for (const e of options.available) {
    if (!archOk(e.architecture)) continue;
    const list = byName.get(e.package) ?? [];
    list.push(e);
    byName.set(e.package, list);
  }
  // Newest first, so the first match of a search is the best candidate.
  for (const list of byName.values()) list.sort((a, b) => compareDebianVersions(b.version, a.version));

  const moving = new Map<string, PlannedUpgrade>();
  const order: string[] = [];
  const nodeOf = (p: InstalledPackage | PackageEntry): Node => {
    const name = 'name' in p ? p.name : p.package;
    return {
      name,
      version: p.version,
      provides: parseRelations(p.provides),
      depends: [...parseRelations(p.preDepends), ...parseRelations(p.depends)],
      breaks: parseRelations(p.breaks),
    };
  };
  const installedNodes = new Map([...installed.values()].map((p) => [p.name, nodeOf(p)]));
  const movingNodes = new Map<string, Node>();
  const installedProviders = new Map<string, Node[]>();
  for (const n of installedNodes.values())
    for (const c of n.provides)
      for (const r of c) installedProviders.set(r.name, [...(installedProviders.get(r.name) ?? []), n]);
  const before = (name: string): Node | undefined => installedNodes.get(name);
  const after = (name: string): Node | undefined => movingNodes.get(name) ?? installedNodes.get(name);
  const providersBefore = (name: string): Node[] => installedProviders.get(name) ?? [];
  const providersAfter = (name: string): Node[] => [
    ...providersBefore(name).filter((n) => !movingNodes.has(n.name)),
    ...[...movingNodes.values()].filter((n) => n.provides.some((c) => c.some((r) => r.name === name))),
  ];
  const satisfiedAfter = (clause: Clause): boolean =>
    clause.some((r) => relationSatisfied(r, after, providersAfter));
  const satisfiedBefore = (clause: Clause): boolean =>
    clause.some((r) => relationSatisfied(r, before, providersBefore));
  /** True when `r` (of a Breaks field) hits the new version of a package that moves. */
  const breaksMoving = (r: Relation): boolean => {
    const target = movingNodes.get(r.name);
    return target !== undefined && versionSatisfies(target.version, r);
  };

  const move = (entry: PackageEntry, reason: UpgradeReason): boolean => {
    const existing = moving.get(entry.package);
    if (existing) {
      if (existing.entry !== entry) return false;
      if (!existing.reasons.some((r) => JSON.stringify(r) === JSON.stringify(reason)))
        existing.reasons.push(reason);
      return true;
    }
    const have = installed.get(entry.package);
    moving.set(entry.package, {
      package: entry.package,
      architecture: entry.architecture,
      installed: have?.version ?? null,
      candidate: entry.version,
      source: entry.source,
      sourceVersion: entry.sourceVersion,
      reasons: [reason],
      entry,
    });
    movingNodes.set(entry.package, nodeOf(entry));
    order.push(entry.package);
    return true;
  };

  const held = (name: string): boolean => installed.get(name)?.held === true;
  const heldError = (name: string, why: string): UnderstudyError =>
    new UnderstudyError('UPDATE_DEPENDENCY_UNSATISFIABLE', `${system}: ${name} is on hold, but ${why}`, {
      hint: `Release the hold inside the LC (apt-mark unhold ${name}) or leave the update out.`,
    });

  const heldNewer: string[] = [];
  const seeds = options.only === undefined ? undefined : new Set(options.only);
  for (const p of installed.values()) {
    if (seeds && !seeds.has(p.name)) continue;
    const newest = byName.get(p.name)?.[0];
    if (!newest || compareDebianVersions(newest.version, p.version) <= 0) continue;
    if (p.held) heldNewer.push(p.name);
    else move(newest, { kind: 'newer' });
  }

  /** Makes `clause` (a dependency of `of`'s new version) true after the upgrade, or throws. */
  const satisfyForward = (of: PlannedUpgrade, clause: Clause): void => {
    for (const r of clause) {
      const entry = byName.get(r.name)?.find((e) => versionSatisfies(e.version, r));
      if (!entry) continue;
      const have = installed.get(r.name);
      if (have && compareDebianVersions(entry.version, have.version) <= 0) continue;
      if (held(r.name)) throw heldError(r.name, `${of.package} ${of.candidate} needs ${r.text}`);
      const reason: UpgradeReason = have
        ? { kind: 'dependency', of: of.package, relation: r.text }
        : { kind: 'new-dependency', of: of.package, relation: r.text };
      if (move(entry, reason)) return;
    }
    throw new UnderstudyError(
      'UPDATE_DEPENDENCY_UNSATISFIABLE',
      `${system}: ${of.package} ${of.candidate} depends on "${clauseText(clause)}", which neither the installed packages nor the feed satisfy`,
      {
        hint: 'Add a feed that carries the dependency (e.g. the main archive beside the security archive), or leave the update out.',
        details: { package: of.package, version: of.candidate, clause: clauseText(clause) },
      },
    );
  };

  /** Moves the installed, not yet moving `name` to the newest feed version that `ok` accepts, or throws. */
  const moveInstalled = (
    name: string,
    why: string,
    reason: UpgradeReason,
    ok: (entry: PackageEntry) => boolean,
  ): void => {
    if (held(name)) throw heldError(name, why);
    const have = installed.get(name) as InstalledPackage;
    const entry = byName.get(name)?.find((e) => compareDebianVersions(e.version, have.version) > 0 && ok(e));
    if (!entry)
      throw new UnderstudyError(
        'UPDATE_PACKAGE_NOT_IN_FEED',
        `${system}: ${name} ${have.version} must move because ${why}, but the feed has no version of ${name} that fits`,
        {
          hint: 'Add the feed that carries it (the same suite usually publishes every package of a source), or leave the update out.',
          details: { package: name, installed: have.version },
        },
      );
    move(entry, reason);
  };

  // Until nothing more joins the set (each round only adds; a package joins once).
  for (let count = -1; count !== moving.size;) {
    count = moving.size;
    for (const name of [...order]) {
      const up = moving.get(name) as PlannedUpgrade;
      const node = movingNodes.get(name) as Node;
      // Same source, same version.
      for (const other of installed.values()) {
        if (moving.has(other.name) || other.source !== up.source) continue;
        if (compareDebianVersions(other.sourceVersion, up.sourceVersion) >= 0) continue;
        const reason: UpgradeReason = {
          kind: 'same-source',
          source: up.source,
          sourceVersion: up.sourceVersion,
          with: name,
        };
        moveInstalled(
          other.name,
          `it is built from ${up.source}, which moves to ${up.sourceVersion} with ${name}`,
          reason,
          (e) => e.source === up.source && e.sourceVersion === up.sourceVersion,
        );
      }
      for (const clause of node.depends) if (!satisfiedAfter(clause)) satisfyForward(up, clause);
      for (const clause of node.breaks) {
        for (const r of clause) {
          const target = after(r.name);
          if (!target || target.name === name || !versionSatisfies(target.version, r)) continue;
          if (moving.has(r.name))
            throw new UnderstudyError(
              'UPDATE_DEPENDENCY_UNSATISFIABLE',
              `${system}: ${name} ${up.candidate} breaks ${r.text}, and the feed's ${r.name} ${target.version} is such a version`,
              { details: { package: name, relation: r.text } },
            );
          moveInstalled(
            r.name,
            `${name} ${up.candidate} breaks ${r.text}`,
            { kind: 'breaks', by: name, relation: r.text },
            (e) => !versionSatisfies(e.version, r),
          );
        }
      }
    }
    // Installed packages that stay: a dependency the upgrade broke, or a Breaks of theirs that now hits.
    for (const [name, node] of installedNodes) {
      if (moving.has(name)) continue;
      for (const clause of node.depends) {
        if (satisfiedAfter(clause) || !satisfiedBefore(clause)) continue;
        const on = clause.find((r) => moving.has(r.name))?.name ?? clause[0]?.name ?? '';
        const text = clauseText(clause);
        moveInstalled(
          name,
          `it depends on "${text}", which the upgrade of ${on} no longer satisfies`,
          { kind: 'reverse-dependency', on, relation: text },
          // A version whose own dependencies on what moves are met by the new versions.
          (e) =>
            nodeOf(e)
              .depends.filter((c) => c.some((r) => movingNodes.has(r.name)))
              .every(satisfiedAfter),
        );
        break;
      }
      if (moving.has(name)) continue;
      for (const clause of node.breaks) {
        const hit = clause.find(breaksMoving);
        if (!hit) continue;
        moveInstalled(
          name,
          `its installed version breaks ${hit.text}, the new version of ${hit.name}`,
          { kind: 'breaks', by: name, relation: hit.text },
          (e) => !nodeOf(e).breaks.some((c) => c.some((r) => breaksMoving(r))),
        );
        break;
      }
    }
  }
  return { upgrades: order.map((n) => moving.get(n) as PlannedUpgrade), held: heldNewer.sort() };
}
