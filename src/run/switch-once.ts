/**
 * Runs a switch of a run at most once: after a crash of the manager, the switch journal may already
 * have finished the switch (recoverSwitches); then its result is adopted instead of switching again.
 */
import {
  SwitchJournal,
  runSwitch,
  type SwitchDeps,
  type SwitchPlanInput,
  type SwitchResult,
} from '../switch/index.ts';
import type { Db } from '../store/index.ts';
import { z } from 'zod';

/** The figures of a finished switch that its journal keeps (for the report; a missing one is 0). */
const switchFigures = z.object({
  drainMs: z.number().catch(0),
  leftOnLc1: z.number().catch(0),
  holdMs: z.number().catch(0),
  syncMs: z.number().catch(0),
});

/** The switch of `from` to `to` begun since `since` that the journal already finished, if any. */
export function finishedSwitch(db: Db, from: string, to: string, since: string): SwitchResult | undefined {
  const previous = new SwitchJournal(db)
    .list(50)
    .find((r) => r.plan.from.lc === from && r.plan.to.lc === to && r.startedAt >= since);
  if (previous?.state !== 'switched') return undefined;
  const f = switchFigures.parse(previous.facts);
  return {
    id: previous.id,
    method: previous.plan.method,
    outcome: 'switched',
    durationMs: previous.finishedAt ? Date.parse(previous.finishedAt) - Date.parse(previous.startedAt) : 0,
    drainMs: f.drainMs,
    leftOnLc1: f.leftOnLc1,
    holdMs: f.holdMs,
    syncMs: f.syncMs,
    steps: [],
  };
}

export async function switchOnce(options: {
  input: SwitchPlanInput;
  deps: SwitchDeps;
  since: string;
}): Promise<SwitchResult> {
  const { input, deps } = options;
  return finishedSwitch(deps.db, input.from.lc, input.to.lc, options.since) ?? runSwitch(input, deps);
}
