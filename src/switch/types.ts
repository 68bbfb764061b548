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

/**
 * The cut of a stateful switch, asked of the service itself (see `docs/switch.md`, "The cut"):
 * - `writes`: report the writes in flight, change nothing;
 * - `quiesce`: start no new write, close keep-alive sockets once idle, pass every request read from
 *   then on to `forwardTo` (the new server's own ip:port) — without it, answer a write read from then
 *   on `503` + `Retry-After: 0` (not applied) and serve the rest —, answer once the last write in
 *   flight is on disk or after `waitMs`;
 * - `unquiesce`: back to normal (the switch was undone);
 * - `hold`: accept and parse requests but let them wait (the standby, until the final sync is in);
 * - `release`: read the data again from disk, then let the waiting requests proceed.
 */
export type CutAction = 'writes' | 'quiesce' | 'unquiesce' | 'hold' | 'release';

/** What the service answers to a cut action. */
export interface ServiceWriteState {
  writesInFlight: number;
  /** Age of the oldest write in flight (0 when none). */
  oldestWriteMs: number;
  quiesced: boolean;
  held: boolean;
  /** quiesce: no write in flight and the data on disk. */
  quiet?: boolean;
  /** quiesce: how long the service waited for its last write. */
  waitedMs?: number;
  /** release: how long reading the data again took. */
  reloadMs?: number;
}

/** One LC as the switch sees it. */
export interface SwitchSide {
  /** LC name (messages, journal). */
  readonly name: string;
  /** Runs a host program (ip, nft, ss, sysctl, arping, curl, timeout, bash) in the LC's network namespace. */
  netExec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Runs argv inside the LC (its filesystem, namespaces and limits): the driver's exec. Needed by a
   * `command` health check; a side without it fails such a check.
   */
  exec?(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Delivers a signal to the LC's service. Must be idempotent. */
  signalService(signal: ServiceSignal): Promise<void>;
  /**
   * Asks the service for a cut action. Optional: without it the switch speaks the demo service's
   * protocol, HTTP on loopback at the service port (`POST /.understudy/<action>`, JSON answers). Throws
   * when the service does not offer it (the switch then falls back to the connection drain).
   */
  cutControl?(
    action: CutAction,
    options: { port: number; waitMs?: number; forwardTo?: string },
  ): Promise<ServiceWriteState>;
}

/** What the final sync reports about its own phases (the disk copy's last incremental). */
export interface FinalSyncPhases {
  /** Freezing LC1's disks and taking the snapshot of the cut. */
  snapshotMs: number;
  /** Finding/sending what changed since the last pass. */
  diffMs: number;
  /** Receiving/copying it onto LC2's disks. */
  copyMs: number;
  verifyMs: number;
  bytes: number;
  files: number;
  /** Paths both LCs changed that kept LC2's version (its patched system disk), and the first of them. */
  conflicts?: number;
  conflictPaths?: string[];
  /** One line per disk: what it carried and how ("lc1/app → lc2/app: 12 paths in-process, 31 ms"). */
  disks?: string[];
  /** The sync's own write to the store (its record of the new bases), the longest disk's. */
  storeMs?: number;
}

/**
 * How a stateful switch finds LC1's last write:
 * - `writes`: the service is quiesced (no new write starts, it reports when its last write is on
 *   disk); requests that do not write (a slow upload) may finish on LC1 after LC2 serves.
 * - `connections`: wait until LC1 has no connection left (for services without the cut protocol;
 *   also used when LC1's service does not answer it).
 */
export interface CutPolicy {
  kind: 'writes' | 'connections';
  /** Budget of the hold for LC1's writes in flight (default 100 ms). */
  maxHoldMs: number;
  /**
   * Before any traffic moves, LC1's service is asked for its writes in flight; a write in flight for
   * at least maxHoldMs / 2 (a slow body) would hold new requests too long. Then:
   * `wait` — look again every `retryIntervalMs`, at most `retries` times, and switch at the first
   * quiet moment (SWITCH_WRITES_TOO_SLOW when none comes); `proceed` — switch anyway, the hold lasts
   * as long as those writes (reported); `abort` — SWITCH_WRITES_TOO_SLOW at once. Nothing is changed
   * before the check passes.
   */
  onSlowWrites: 'wait' | 'proceed' | 'abort';
  retries: number;
  retryIntervalMs: number;
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

/**
 * How to tell that a service answers. `retries` extra attempts, `intervalMs` apart, each bounded by
 * `timeoutMs`:
 * - `http`: GET path from the LC's network context, answering expectStatus;
 * - `tcp`: a TCP connect from the LC's network context;
 * - `command`: argv run inside the LC (the side's exec); exit status 0 is healthy.
 */
export type HealthCheck =
  | {
      kind: 'http';
      path: string;
      expectStatus: number;
      timeoutMs: number;
      retries: number;
      intervalMs: number;
    }
  | { kind: 'tcp'; timeoutMs: number; retries: number; intervalMs: number }
  | { kind: 'command'; argv: string[]; timeoutMs: number; retries: number; intervalMs: number };

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
  /**
   * Stateful: how the cut finds LC1's last write. Absent only in plans journalled before it existed
   * (they keep the connection drain and their step order).
   */
  cut?: CutPolicy;
}

export type SwitchPlanInput = Omit<SwitchPlan, 'health' | 'drainTimeoutMs' | 'stateful' | 'tailMs' | 'cut'> &
  Partial<Pick<SwitchPlan, 'health' | 'drainTimeoutMs' | 'stateful' | 'tailMs'>> & {
    cut?: Partial<CutPolicy>;
  };

/** Where the time of a stateful switch went (ms; absent when the phase did not happen). */
export interface SwitchPhases {
  /** Before the switch: the check of LC1's writes in flight, including waits for a quieter moment. */
  gateMs?: number;
  /** Times the check found slow writes and waited. */
  gateRetries?: number;
  /** Before the hold: the final sync's preparation (disks flushed, what need not wait for the cut synced). */
  prepareMs?: number;
  /** What the preparation synced (the system disks), when it reports it. */
  prepare?: FinalSyncPhases;
  /** The cut's drain: from asking LC1 to quiesce to its last write on disk (or, connection cut, to its last connection). */
  drainMs?: number;
  /** The final sync, whole. */
  syncMs?: number;
  /** The final sync's own phases, when it reports them. */
  sync?: FinalSyncPhases;
  /** From the end of the sync to LC2 serving (the release, with the service reading its data again). */
  releaseMs?: number;
  /** Part of releaseMs: LC2's service reading its data again. */
  reloadMs?: number;
  /**
   * How long new requests were held at LC2: from the moment they could reach it (instant: LC2 took
   * the address; otherwise: the hold) to the release.
   */
  holdMs?: number;
  /** The writes in flight outlasted maxHoldMs at the cut (they were waited for: nothing is lost). */
  holdExceeded?: boolean;
  /** Part of holdMs: the switch journal's writes inside the hold. */
  holdJournalMs?: number;
  /** After the release: LC1 finishing its last requests (uploads), while LC2 already serves. */
  finishMs?: number;
}

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
  /**
   * How long new requests were held at LC2 for the final sync (stateful only): from the moment they
   * could reach it (instant: LC2 took the address; otherwise: the hold) to the release.
   */
  holdMs: number;
  /** Duration of finalSync (stateful only). */
  syncMs: number;
  /** Stateful: how the cut was made, and where its time went. */
  cut?: 'writes' | 'connections';
  phases?: SwitchPhases;
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
