/**
 * The network switch (seed Fig. 13–17, 21–26) as data and narrow interfaces. The switch never sees a
 * driver: the lead binds a `SwitchSide` to `driver.netExec(lc, …)` / `driver.exec(lc, …)` and
 * `moveNic` to `driver.moveNic(…)`, so the same code runs on any partitioning driver.
 */
import type { ExecOptions, ExecResult } from '../core/index.ts';

/**
 * How traffic moves from LC1 to LC2:
 * - `move-nic` (Fig. 13/14): drain LC1, move its NIC (MAC and addresses) into LC2.
 * - `swap-address` (Fig. 15–17): drain LC1, LC1 takes a new address, LC2 takes the service address.
 * - `instant` (Fig. 21–26): LC2 takes the service address at once; LC1 finishes the connections it
 *   already accepted, their packets reaching LC2 are passed on to LC1.
 */
export type SwitchMethod = 'move-nic' | 'swap-address' | 'instant';
export const switchMethods: readonly SwitchMethod[] = ['move-nic', 'swap-address', 'instant'];

/** What the service process can be asked to do (the demo service: SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT). */
export type ServiceSignal =
  /** every response carries `Connection: close`, idle keep-alive sockets are closed */
  | 'drain'
  /** back to normal keep-alive */
  | 'undrain'
  /** stop calling accept(): new connections wait in the kernel's accept backlog */
  | 'pause'
  /** accept again */
  | 'resume';

/** One LC as the switch sees it. */
export interface SwitchSide {
  /** LC name (messages, journal). */
  readonly name: string;
  /** Runs a host program (ip, nft, ss, sysctl, arping, curl, timeout, bash) in the LC's network namespace. */
  netExec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Delivers a signal to the LC's service. Must be idempotent. */
  signalService(signal: ServiceSignal): Promise<void>;
}

/**
 * Moves the NIC `nic` (with its MAC) from `from` to `to`, where it carries exactly `addresses`;
 * resolves with its name in `to`.
 */
export type MoveNic = (options: {
  from: SwitchSide;
  to: SwitchSide;
  nic: string;
  addresses: readonly string[];
}) => Promise<string>;

/** How to tell that a service answers. `retries` extra attempts, `intervalMs` apart. */
export type HealthCheck =
  | {
      kind: 'http';
      path: string;
      expectStatus: number;
      timeoutMs: number;
      retries: number;
      intervalMs: number;
    }
  | { kind: 'tcp'; timeoutMs: number; retries: number; intervalMs: number };

export interface SwitchPlan {
  method: SwitchMethod;
  /** The service address with its prefix, e.g. 198.18.0.10/24, and the TCP port of the service. */
  service: { address: string; port: number };
  /** LC1: holds the service address on `nic` (whose MAC is `mac`). */
  from: {
    lc: string;
    nic: string;
    mac: string;
    /**
     * LC1's address after the switch (CIDR, same subnet), when LC1 holds no other address on `nic`
     * (one it holds is kept instead, so repeated switches never pile addresses up on an LC).
     */
    newAddress?: string;
  };
  /**
   * LC2: its own NIC on the same bridge (the one forwarded packets and announcements use).
   * `spares`: addresses LC2 holds only because an earlier switch gave them to it as LC1's new
   * address; they are released once LC2 serves (filled in by runSwitch from the journal).
   */
  to: { lc: string; nic: string; mac: string; spares?: string[] };
  health: HealthCheck;
  /** Longest wait for LC1's accepted requests to finish before switching anyway. */
  drainTimeoutMs: number;
  /** The application disk holds data: finalSync runs after LC1's last write and before LC2 serves. */
  stateful: boolean;
  /** swap-address: how long LC1 keeps passing on packets from clients that still use its MAC. */
  tailMs: number;
}

export type SwitchPlanInput = Omit<SwitchPlan, 'health' | 'drainTimeoutMs' | 'stateful' | 'tailMs'> &
  Partial<Pick<SwitchPlan, 'health' | 'drainTimeoutMs' | 'stateful' | 'tailMs'>>;

/** What a finished switch reports. */
export interface SwitchResult {
  id: string;
  method: SwitchMethod;
  outcome: 'switched' | 'reversed';
  /** Time from the first traffic-affecting step to the end of the switch. */
  durationMs: number;
  /** Time LC1's accepted requests took to finish (0 when none). */
  drainMs: number;
  /** Connections LC1 still held when the drain timed out (0 = clean drain). */
  leftOnLc1: number;
  /** How long new connections were held in LC2's backlog for the final sync (stateful only). */
  holdMs: number;
  /** Duration of finalSync (stateful only). */
  syncMs: number;
  steps: { name: string; ms: number }[];
}

/** A switch asked for by LC names (the CLI's `switch <from> <to>`), before it is bound to a plan. */
export interface SwitchRequest {
  from: string;
  to: string;
  method: SwitchMethod;
  stateful: boolean;
  /** LC1's address after the switch (CIDR), when given on the command line. */
  fromAddress?: string;
  drainTimeoutMs: number;
}
