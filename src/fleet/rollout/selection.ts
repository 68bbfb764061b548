/**
 * Which patches and which LCs a rollout covers. Pure: the catalogue and the targets are given, the
 * clock is a parameter.
 */
import type { ResolvedRolloutSpec } from './spec.ts';

export interface FleetPatch {
  name: string;
  security: boolean;
  /** When the fleet first saw the patch pending on any host. */
  firstSeen: Date;
}

export interface FleetTarget {
  host: string;
  lc: string;
  group: string;
  labels: Readonly<Record<string, string>>;
}

export const targetKey = (t: Pick<FleetTarget, 'host' | 'lc'>): string => `${t.host}/${t.lc}`;

const dayMs = 24 * 60 * 60 * 1000;

/**
 * The patches a rollout approves at `now`, sorted by name: security only when asked, old enough
 * when a minimum age is set, and only the named ones when an explicit list is given.
 */
export function selectPatches(
  catalogue: readonly FleetPatch[],
  selection: ResolvedRolloutSpec['patches'],
  now: Date,
): FleetPatch[] {
  const explicit = selection.explicit ? new Set(selection.explicit) : undefined;
  return catalogue
    .filter((p) => !selection.securityOnly || p.security)
    .filter(
      (p) =>
        selection.minAgeDays === undefined ||
        now.getTime() - p.firstSeen.getTime() >= selection.minAgeDays * dayMs,
    )
    .filter((p) => !explicit || explicit.has(p.name))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The LCs a rollout targets, in a stable order (group, host, LC). */
export function selectTargets(
  all: readonly FleetTarget[],
  targets: ResolvedRolloutSpec['targets'],
): FleetTarget[] {
  const groups = targets.groups ? new Set(targets.groups) : undefined;
  return all
    .filter((t) => !groups || groups.has(t.group))
    .filter((t) => Object.entries(targets.labels).every(([k, v]) => t.labels[k] === v))
    .sort(
      (a, b) => a.group.localeCompare(b.group) || a.host.localeCompare(b.host) || a.lc.localeCompare(b.lc),
    );
}
