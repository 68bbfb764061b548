/** The vocabulary of the patch run (Fig. 7). */
import type { HealthReport } from '../switch/index.ts';
import type { ServiceDefinition } from '../inventory/index.ts';
import type { SwitchMethod } from '../switch/index.ts';
import type { RunFacts } from './facts.ts';

/**
 * State of a run:
 * - `running`: steps are being done (or the manager driving it crashed: see owner_pid).
 * - `failed`: a step before the switch failed; the standby was discarded, LC1 serves as before.
 * - `switched`: the service runs on the patched standby; LC1 is kept as the rollback target.
 * - `rolling-back`: the service is being moved back to LC1.
 * - `rolled-back`: the service runs on LC1 again, with the data written meanwhile.
 * - `cancelled`: an operator cancelled it before the switch; the running step was stopped, the
 *   standby discarded, LC1 serves as before.
 */
export type RunState = 'running' | 'failed' | 'switched' | 'rolling-back' | 'rolled-back' | 'cancelled';

/** State of a step: `pending`, `running` (started, maybe interrupted), `done`, `failed`, `undone`. */
export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'undone';

export interface RunOptions {
  lc: string;
  /** Patch names; default: the patches marked "apply at next run" for the LC. */
  patches?: string[];
  /** Standby LC; default: the best fit of the standby search. */
  standby?: string;
  method?: SwitchMethod;
  /** ClamAV signature database (file or directory); default: ClamAV's own. */
  scanDatabase?: string;
  /** Skip the scan (for images without a database; recorded in the run). */
  skipScan?: boolean;
  /** How long the standby may take to boot and report (default 120 s). */
  bootTimeoutMs?: number;
  /** Watch the service after the switch for this long and roll back by itself if it fails (0 = no). */
  watchMs?: number;
  /** The application disk holds data to carry over at the switch (default: when the LC has one). */
  stateful?: boolean;
}

export type ResolvedRunOptions = Required<
  Omit<RunOptions, 'patches' | 'standby' | 'scanDatabase' | 'stateful'>
> & {
  stateful: boolean;
  /** From the service: the path of its HTTP check ('/' for another kind) and its first port. */
  healthPath: string;
  port: number;
  /** The service the run moves (LC1's declared one); absent only in runs journalled before services. */
  service?: ServiceDefinition;
  patches: string[];
  standby?: string;
  scanDatabase?: string;
};

export interface StepRecord {
  seq: number;
  name: string;
  state: StepState;
  attempts: number;
  startedAt: string | null;
  endedAt: string | null;
  durationMs: number | null;
  output: unknown;
  error: string | null;
}

export interface RunRecord {
  id: string;
  lc: string;
  standby: string | null;
  options: ResolvedRunOptions;
  state: RunState;
  facts: RunFacts;
  error: string | null;
  ownerPid: number | null;
  /** The owner (process, start time, instance) driving the run; see core's Owner. */
  owner: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  steps: StepRecord[];
}

export interface RunEvent {
  runId: string;
  step: string;
  state: StepState | 'note';
  message?: string;
  durationMs?: number;
  /** Structured progress of a note (e.g. a copy pass: phase, pass, bytesDone, bytesTotal, bytesPerSecond). */
  progress?: Record<string, number | string | null>;
  /** A note that reports a health check (the standby's, or the service's around and after the switch). */
  health?: HealthReport;
}
