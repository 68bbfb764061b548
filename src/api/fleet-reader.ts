/**
 * What the API and the console read of the fleet, when the daemon runs next to a control plane. The
 * shapes are the control plane's views (`src/fleet`: `listRolloutSummaries`, `rolloutDetail`,
 * `listHostViews`, joined by `fleetReader`), declared here structurally so that the API does not
 * depend on the fleet's code.
 */
import type { z } from 'zod';
import type { ApprovalAdmin, Decision } from '../mail/index.ts';

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
  /** The rollout's record: operators' actions and approvals, allowed or refused, oldest first. */
  history: {
    at: string;
    actor: string;
    action: string;
    outcome: 'allowed' | 'refused';
    detail: Record<string, unknown>;
  }[];
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

/**
 * Steering rollouts, when the daemon runs next to a control plane (`src/fleet`'s `rolloutSteering`):
 * every action is audited in the control plane under the operator's name. Errors: FLEET_NOT_FOUND
 * (404), FLEET_ROLLOUT_INVALID (400), FLEET_ROLLOUT_STATE (409).
 */
export interface FleetControl {
  /** The rollout definition (request body of POST /v1/fleet/rollouts, in the OpenAPI document). */
  rolloutSpecSchema: z.ZodType;
  create(spec: unknown, operator: string): Promise<FleetRolloutDetail>;
  command(
    id: number,
    command: 'pause' | 'resume' | 'stop',
    operator: string,
  ): Promise<{ id: number; state: string }>;
  /** `wave` counts from 1 (the canary). */
  rollbackWave(
    id: number,
    wave: number,
    operator: string,
  ): Promise<{ id: number; wave: number; rollingBack: number }>;
  rollbackLc(
    id: number,
    target: { host: string; lc: string },
    operator: string,
  ): Promise<{ id: number; host: string; lc: string; wave: number; workId: number }>;
  reissueChallenge(
    id: number,
    request: { admin: string; ttlMs?: number },
    operator: string,
  ): Promise<{ challenge: string; admin: string; expiresAt: string; patchSet: string[]; replaced: number }>;
  /** Checks the administrator's code against the challenge (the mail's rules) and applies the decision. */
  decide(
    id: number,
    approval: {
      admin: ApprovalAdmin;
      challenge: string;
      decision: Decision;
      code: string;
      codeWindowMinutes?: number;
      maxFailedAttempts?: number;
    },
    operator: string,
  ): Promise<
    | { ok: true; rolloutId: number; admin: string; state: 'running' | 'stopped' }
    | { ok: false; reason: string; message: string }
  >;
}
