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
 * - Conflicts (Debian policy 7.4, 7.6.2): an installed package that a new version conflicts with — by
 *   name and version, or by a virtual name it provides — is removed when that new version also
 *   Replaces it (the package is taken over: dpkg removes it in the same transaction; listed in
 *   `removals`), otherwise it moves to a version the conflict does not hit; an installed package whose
 *   own Conflicts hits a new version is treated the same way. A conflict nothing resolves is an error.
 *   Replaces without Conflicts changes nothing in the set (files may pass between the packages).
 * A package on hold never moves and is never removed; when the closure needs it, that is an error.
 */
import { UnderstudyError } from '../core/index.ts';
import type { PackageEntry } from './apt-index.ts';
import { compareDebianVersions } from './debian-version.ts';
import {
  clauseText,
  parseRelations,
  relationHits,
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
  | { kind: 'breaks'; by: string; relation: string }
  /** `by`'s new version conflicts with the installed version (`relation`) and does not replace it. */
  | { kind: 'conflicts'; by: string; relation: string }
  /** The installed version conflicts (`relation`) with the new version of `on`. */
  | { kind: 'conflicts-with'; on: string; relation: string };

/**
 * An installed package the upgrade removes: a new version of `by` conflicts with it and replaces it
 * (Conflicts + Replaces, Debian policy 7.6.2), so dpkg removes it when `by` is unpacked.
 */
export interface PlannedRemoval {
  package: string;
  installed: string;
  by: string;
  /** The relations of `by`'s new version that hit it, as written. */
  conflicts: string;
  replaces: string;
}

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
  /** Installed packages a new version conflicts with and replaces. */
  removals: PlannedRemoval[];
}

export interface PlanUpgradeOptions {
  installed: readonly InstalledPackage[];
  /** Every entry of the verified Packages indexes (several feeds may be merged). */
  available: readonly PackageEntry[];
  /** The system's architecture (dpkg --print-architecture): packages of it and of `all` count. */
  architecture: string;
  /** Names the system for messages (the LC). */
  system: string;
}

interface Node extends RelationTarget {
  depends: Clause[];
  breaks: Clause[];
  conflicts: Clause[];
  replaces: Clause[];
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
    case 'conflicts':
      return `${r.by} conflicts with ${r.relation}`;
    case 'conflicts-with':
      return `conflicts with ${r.relation}, the new version of ${r.on}`;
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
      conflicts: parseRelations(p.conflicts),
      replaces: parseRelations(p.replaces),
    };
  };
  const installedNodes = new Map([...installed.values()].map((p) => [p.name, nodeOf(p)]));
  const movingNodes = new Map<string, Node>();
  const installedProviders = new Map<string, Node[]>();
  for (const n of installedNodes.values())
    for (const c of n.provides)
      for (const r of c) installedProviders.set(r.name, [...(installedProviders.get(r.name) ?? []), n]);
  const removals = new Map<string, PlannedRemoval>();
  const before = (name: string): Node | undefined => installedNodes.get(name);
  const after = (name: string): Node | undefined =>
    movingNodes.get(name) ?? (removals.has(name) ? undefined : installedNodes.get(name));
  const providersBefore = (name: string): Node[] => installedProviders.get(name) ?? [];
  const providersAfter = (name: string): Node[] => [
    ...providersBefore(name).filter((n) => !movingNodes.has(n.name) && !removals.has(n.name)),
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
  for (const p of installed.values()) {
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

  /** The installed packages that stay as they are (neither moving nor removed). */
  const staying = (): Node[] =>
    [...installedNodes.values()].filter((n) => !movingNodes.has(n.name) && !removals.has(n.name));
  /**
   * `newer` (moving) and the staying installed `old` conflict (`relation`, of `owner`'s Conflicts):
   * `old` is removed when `newer` replaces it, else moves to a version that `accept` takes, or throws.
   */
  const resolveConflict = (o: {
    newer: Node;
    old: Node;
    relation: Relation;
    reason: UpgradeReason;
    why: string;
    accept: (entry: PackageEntry) => boolean;
  }): void => {
    const replaces = o.newer.replaces.flat().filter((r) => relationHits(r, o.newer.name, [o.old]).length > 0);
    if (replaces.length > 0) {
      if (held(o.old.name))
        throw heldError(o.old.name, `${o.why}, and ${o.newer.name} ${o.newer.version} replaces it`);
      removals.set(o.old.name, {
        package: o.old.name,
        installed: o.old.version,
        by: o.newer.name,
        conflicts: o.relation.text,
        replaces: replaces.map((r) => r.text).join(', '),
      });
      return;
    }
    if (!byName.get(o.old.name)?.some(o.accept))
      throw new UnderstudyError(
        'UPDATE_DEPENDENCY_UNSATISFIABLE',
        `${system}: ${o.why}; ${o.newer.name} ${o.newer.version} does not replace ${o.old.name}, and the feed has no version of ${o.old.name} without the conflict`,
        {
          hint: `Remove ${o.old.name} inside the LC if it is no longer needed, add a feed with a version of it that does not conflict, or leave the update out.`,
          details: {
            package: o.old.name,
            installed: o.old.version,
            with: o.newer.name,
            relation: o.relation.text,
          },
        },
      );
    moveInstalled(o.old.name, o.why, o.reason, o.accept);
  };
  /** True when none of `conflicts` hits a moving package (other than `self`). */
  const clearOfMoving = (self: string, conflicts: Clause[]): boolean =>
    conflicts.every((c) => c.every((r) => relationHits(r, self, [...movingNodes.values()]).length === 0));

  // Until nothing more joins the set (each round only adds; a package joins once).
  for (let count = -1; count !== moving.size + removals.size;) {
    count = moving.size + removals.size;
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
      for (const r of node.conflicts.flat()) {
        for (const hit of relationHits(r, name, [...movingNodes.values()]))
          throw new UnderstudyError(
            'UPDATE_DEPENDENCY_UNSATISFIABLE',
            `${system}: ${name} ${up.candidate} conflicts with ${r.text}, and ${hit.name} ${hit.version} moves with it`,
            { details: { package: name, relation: r.text, with: hit.name } },
          );
        for (const hit of relationHits(r, name, staying()))
          resolveConflict({
            newer: node,
            old: hit as Node,
            relation: r,
            reason: { kind: 'conflicts', by: name, relation: r.text },
            why: `${name} ${up.candidate} conflicts with ${r.text}, which the installed ${hit.name} ${hit.version} is`,
            accept: (e) => relationHits(r, name, [nodeOf(e)]).length === 0,
          });
      }
    }
    // Installed packages that stay: a dependency the upgrade broke, or a Breaks of theirs that now hits.
    for (const [name, node] of installedNodes) {
      if (moving.has(name) || removals.has(name)) continue;
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
      if (moving.has(name) || removals.has(name)) continue;
      for (const r of node.conflicts.flat()) {
        const [hit] = relationHits(r, name, [...movingNodes.values()]);
        if (!hit) continue;
        resolveConflict({
          newer: hit as Node,
          old: node,
          relation: r,
          reason: { kind: 'conflicts-with', on: hit.name, relation: r.text },
          why: `the installed ${name} ${node.version} conflicts with ${r.text}, the new version of ${hit.name}`,
          accept: (e) => clearOfMoving(name, nodeOf(e).conflicts),
        });
        break;
      }
    }
  }
  return {
    upgrades: order.map((n) => moving.get(n) as PlannedUpgrade),
    held: heldNewer.sort(),
    removals: [...removals.values()],
  };
}
