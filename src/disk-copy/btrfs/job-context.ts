/** What the steps of one copy job share (internal to the disk copy). */
import type { HistoryRecorder } from '../history.ts';
import type { Convergence, CopyDiskOptions, CopyProgress, PassReport } from '../types.ts';

/** The context every step of one copy job shares. */
export interface CopyJobContext {
  jobId: string;
  source: string;
  /** Directory beside the source holding this job's read-only snapshots. */
  sourceStage: string;
  /** Directory in the destination pool where the received subvolumes land (send-receive only). */
  destinationStage: string;
  destination: string;
  poolPath: string;
  options: CopyDiskOptions;
  recorder: HistoryRecorder;
  passes: PassReport[];
  started: number;
  throwIfCancelled(): void;
  progress(event: Omit<CopyProgress, 'jobId' | 'elapsedMs'>): void;
  /** Stores history records gathered since the last call (when a db was given). */
  flushHistory(): void;
}

export interface CutOutcome {
  /** Read-only snapshot of the source at the cut (removed with the staging directory). */
  cutSnapshot: string;
  /** The snapshot the destination was cloned from (send-receive: the received cut; kept only with keepSyncBase). */
  receivedCut: string;
  cutAt: string;
  freezeMs: number;
  freezeAttempts: number;
  convergence: Convergence;
  throttledMs: number;
}
