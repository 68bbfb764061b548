/**
 * A host runner without LCs behind it, for the control plane's component tests and benchmark:
 * it keeps the contract of HostRunner (idempotent per work id) and counts how often each work id
 * really ran, so a test can prove that nothing ran twice. Real LCs go through the host's patch run.
 */
import type { HealthReport, HostRunner, LcInventory, RunOutcome, RunRequest } from './agent.ts';

export interface FakeRunnerOptions {
  lcs: LcInventory[];
  /** How long a run takes (ms). */
  runMs?: number;
  /** LCs whose patch run fails (the service stays on the original). */
  failing?: ReadonlySet<string>;
  /** LCs whose service is unhealthy after their patch switched. */
  unhealthy?: ReadonlySet<string>;
}

export class FakeHostRunner implements HostRunner {
  /** Work id → how many times a run really started for it. */
  readonly starts = new Map<number, number>();
  private readonly inFlight = new Map<number, Promise<RunOutcome>>();
  private readonly done = new Map<number, RunOutcome>();

  constructor(private readonly options: FakeRunnerOptions) {}

  patch(request: RunRequest): Promise<RunOutcome> {
    const failing = this.options.failing?.has(request.lc) === true;
    return this.once(request.workId, () =>
      failing
        ? {
            outcome: 'failed',
            detail: { lc: request.lc, error: 'injected failure: the standby did not pass its check' },
          }
        : { outcome: 'succeeded', detail: { lc: request.lc, patches: request.patches } },
    );
  }

  rollback(request: Omit<RunRequest, 'patches'>): Promise<RunOutcome> {
    return this.once(request.workId, () => ({
      outcome: 'succeeded',
      detail: { lc: request.lc, rolledBack: true },
    }));
  }

  health(request: { workId: number; lc: string }): Promise<HealthReport> {
    const healthy = this.options.unhealthy?.has(request.lc) !== true;
    return Promise.resolve({ healthy, detail: { status: healthy ? 200 : 503 } });
  }

  inventory(): Promise<LcInventory[]> {
    return Promise.resolve(this.options.lcs);
  }

  private once(workId: number, result: () => RunOutcome): Promise<RunOutcome> {
    const finished = this.done.get(workId);
    if (finished) return Promise.resolve(finished);
    const running = this.inFlight.get(workId);
    if (running) return running;
    this.starts.set(workId, (this.starts.get(workId) ?? 0) + 1);
    const run = new Promise<RunOutcome>((resolve) =>
      setTimeout(() => resolve(result()), this.options.runMs ?? 0),
    ).then((outcome) => {
      this.done.set(workId, outcome);
      this.inFlight.delete(workId);
      return outcome;
    });
    this.inFlight.set(workId, run);
    return run;
  }
}
