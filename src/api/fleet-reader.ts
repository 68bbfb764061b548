/**
 * What the API and the console read of the fleet, when the daemon runs next to a control plane. The
 * shapes are the control plane's views (`src/fleet`: `listRolloutSummaries`, `rolloutDetail`,
 * `listHostViews`, joined by `fleetReader`), declared here structurally so that the API does not
 * depend on the fleet's code.
 */
export interface FleetRolloutSummary {
  id: number;
  name: string;
  state: string;
  reason: string | null;
  patchSet: string[];
  createdAt: string;
  updatedAt: string;
  waves: number;
  targets: number;
  work: Record<string, number | undefined>;
}

export interface FleetWaveTarget {
  host: string;
  lc: string;
  group: string;
  state: string | null;
  rollback: string | null;
  unhealthy: boolean;
  finishedAt: string | null;
}

export interface FleetRolloutDetail extends FleetRolloutSummary {
  spec: Record<string, unknown>;
  wavesDetail: { index: number; name: string; state: string; targets: FleetWaveTarget[] }[];
}

export interface FleetHost {
  id: string;
  enrolledAt: string | null;
  revokedAt: string | null;
  lastSeen: string | null;
  lcs: number;
  openWork: number;
}

export interface FleetLcCompliance {
  host: string;
  lc: string;
  group: string;
  pendingSecurity: { name: string; ageDays: number }[];
  lastRunAt: string | null;
  lastRunResult: string | null;
  daysSinceLastPatch: number | null;
  lastHealth: { healthy: boolean; at: string } | null;
}

export interface FleetGroupCompliance {
  group: string;
  lcs: number;
  lcsWithPendingSecurity: number;
  oldestPendingSecurityDays: number | null;
  lcsLastRunFailed: number;
  maxDaysSinceLastPatch: number | null;
  lcsUnhealthy: number;
}

/** Reads the control plane's database. `rollout` throws FLEET_NOT_FOUND (404) for an unknown id. */
export interface FleetReader {
  rollouts(): Promise<FleetRolloutSummary[]>;
  rollout(id: number): Promise<FleetRolloutDetail>;
  hosts(): Promise<FleetHost[]>;
  compliance(): Promise<{ lcs: FleetLcCompliance[]; groups: FleetGroupCompliance[] }>;
  /** The same as CSV (cells that would start a formula neutralised), per LC or per group. */
  complianceCsv(by: 'lc' | 'group'): Promise<string>;
}
