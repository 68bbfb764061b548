/**
 * Records of a switch's steps (events, progress notes) for the operator. Each is written as its step
 * ends, except inside the hold of a stateful switch (after `hold`, up to `release-hold`): there every
 * write to disk delays the held requests, so those records are kept and written, in order, once the
 * hold is released.
 */
export interface StepRecords {
  /** Writes `write` now, or keeps it until the hold is released when `step` ends inside the hold. */
  add(step: string, write: () => void): void;
  /** Writes what is kept (call it when the switch ends, also when it fails). */
  flush(): void;
}

export function stepRecords(): StepRecords {
  let holding = false;
  const kept: (() => void)[] = [];
  const flush = (): void => {
    for (const write of kept.splice(0)) write();
  };
  return {
    add(step, write) {
      if (step === 'hold') holding = true;
      kept.push(write);
      if (step === 'release-hold') holding = false;
      if (!holding) flush();
    },
    flush,
  };
}
