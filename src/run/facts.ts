/**
 * What the steps of a run keep for later steps (and for the report), as schemas: each step declares
 * the facts it writes, and the run's facts are the union of them. The facts are saved with the run
 * as JSON and validated when read back, so that a record changed by hand or written by an
 * incompatible version fails with RUN_RECORD_INVALID naming the step and the field, instead of
 * surfacing later as a wrong value.
 */
import { z } from 'zod';
import { serviceSchema } from '../inventory/index.ts';
import { switchMethods, type SwitchPhases } from '../switch/index.ts';

/** A run's resolved options as journalled when it started (see ResolvedRunOptions). */
export const runOptionsSchema = z.object({
  lc: z.string(),
  patches: z.array(z.string()),
  standby: z.string().optional(),
  method: z.enum(switchMethods),
  scanDatabase: z.string().optional(),
  skipScan: z.boolean().default(false),
  bootTimeoutMs: z.number(),
  healthPath: z.string(),
  port: z.number(),
  watchMs: z.number().default(0),
  stateful: z.boolean().default(true),
  service: serviceSchema.optional(),
});

const packageOutcome = z.object({
  package: z.string(),
  oldVersion: z.string(),
  newVersion: z.string(),
  intendedVersion: z.string(),
  tool: z.string(),
  conffilesKept: z.array(z.string()),
});

const restartNeeds = z.object({
  processes: z.array(z.object({ pid: z.number(), command: z.string() })),
  rebootRequired: z.boolean(),
});

/**
 * The whole-tree check after a stateful switch (tree-check.ts), as the run keeps it:
 * - `running`: started by the process `owner`; a process that dies leaves it so until the recovery
 *   of the next start, which re-runs it or says why it cannot;
 * - `ok`: the standby's data disks equal LC1's at the cut;
 * - `mismatch`: they differ (`detail` names the first paths): an alarm;
 * - `skipped`: nothing to compare (`detail` says why: no sync base, the pair synced again since);
 * - `error`: the check could not run (`detail`).
 */
export const treeCheckSchema = z.object({
  state: z.enum(['running', 'ok', 'mismatch', 'skipped', 'error']),
  detail: z.string(),
  from: z.string(),
  to: z.string(),
  owner: z.string(),
  at: z.string(),
});

/** A switch's result as the run keeps it (see the switch's SwitchResult). */
export const switchResultSchema = z.object({
  id: z.string(),
  method: z.enum(switchMethods),
  outcome: z.enum(['switched', 'reversed']),
  durationMs: z.number(),
  drainMs: z.number(),
  leftOnLc1: z.number(),
  holdMs: z.number(),
  syncMs: z.number(),
  cut: z.enum(['writes', 'connections']).optional(),
  // Where the time went: numbers and lines for the report, read only to render them.
  phases: z.custom<SwitchPhases>((v) => typeof v === 'object' && v !== null && !Array.isArray(v)).optional(),
  steps: z.array(z.object({ name: z.string(), ms: z.number() })),
  /** The service moved, but a cleanup step after the point of no return failed (left to recovery). */
  cleanupPending: z.string().optional(),
});
export type RunSwitchResult = z.infer<typeof switchResultSchema>;

/** The facts of each step, by the step (a `copy-<disk>` step writes the `copy` facts). */
export const stepFacts = {
  'find-standby': z.object({
    standby: z.string(),
    /** LC1's service address (CIDR). */
    serviceAddress: z.string(),
    /** LC1's disk → the standby's disk that takes its copy (the standby search's disk map). */
    diskMap: z.record(z.string(), z.string()),
    versionBefore: z.string(),
  }),
  scan: z.object({
    scan: z.object({
      files: z.number(),
      infected: z.array(z.string()),
      database: z.string(),
      skipped: z.boolean().optional(),
    }),
  }),
  copy: z.object({
    copies: z.array(
      z.object({
        /** LC1's disk, and the standby's disk it was copied onto. */
        disk: z.string(),
        to: z.string().optional(),
        jobId: z.string(),
        summary: z.string(),
        freezeMs: z.number(),
        convergence: z.string(),
        durationMs: z.number(),
        bytes: z.number(),
        /** How the copy was made (`snapshot`: same pool; `send-receive`: across pools). */
        mode: z.enum(['snapshot', 'send-receive']).optional(),
        /** Each pass: its kind, the stream bytes it carried and its time (snapshot + transfer), ms. */
        passes: z
          .array(z.object({ kind: z.enum(['full', 'catch-up', 'final']), bytes: z.number(), ms: z.number() }))
          .optional(),
        /** The verification at the cut: how, and its time, ms (with `bytes` of file content read). */
        verification: z
          .object({ method: z.enum(['tree-hash', 'clone-diff']), ms: z.number(), bytesRead: z.number() })
          .optional(),
      }),
    ),
  }),
  'boot-standby': z.object({
    patchResults: z.array(
      z.object({
        name: z.string(),
        result: z.enum(['ok', 'failed']),
        exitCode: z.number(),
        appliedAt: z.string(),
        output: z.string().optional(),
        /** For a `deb` patch: the package, its versions before and after, the configuration files kept. */
        deb: packageOutcome.optional(),
      }),
    ),
    /** What the standby said needs a restart after patching (it is rebooted anyway, 708). */
    restartNeeds,
  }),
  'reboot-standby': z.object({
    /** The standby's reboot count before this step asked for one (a rerun does not reboot twice). */
    rebootsBefore: z.number(),
  }),
  'check-standby': z.object({ versionAfter: z.string() }),
  switch: z.object({
    /** LC1's address after the switch. */
    lc1NewAddress: z.string(),
    /** When the switch began: a switch the journal finished since then is adopted, not redone. */
    switchStartedAt: z.string(),
    switchId: z.string(),
    switchResult: switchResultSchema,
    /** The whole-tree checks after the run's stateful switches, by step (`switch`, `rollback-switch`). */
    treeChecks: z.record(z.string(), treeCheckSchema),
  }),
  'record-applied': z.object({
    /** The patches recorded as applied on LC1, each in the transaction that recorded it. */
    recorded: z.array(z.string()),
  }),
  watch: z.object({
    /** When the watch ends (fixed when it starts: a resumed watch watches only what is left). */
    watchUntil: z.string(),
    /** How the watch ended: the service stayed healthy, or it failed and the run rolls back. */
    watchOutcome: z.enum(['healthy', 'unhealthy', 'skipped']),
    watchDetail: z.string(),
  }),
  'rollback-prepare': z.object({
    /** The MAC of the NIC LC1 was given to plan the rollback with (removed at the end). */
    tempNic: z.string(),
  }),
  'rollback-switch': z.object({
    rollbackNewAddress: z.string(),
    rollbackStartedAt: z.string(),
    rollbackSwitchId: z.string(),
    rollbackResult: switchResultSchema,
  }),
} as const;

const runFactsSchema = z
  .object({
    ...stepFacts['find-standby'].shape,
    ...stepFacts.scan.shape,
    ...stepFacts.copy.shape,
    ...stepFacts['boot-standby'].shape,
    ...stepFacts['reboot-standby'].shape,
    ...stepFacts['check-standby'].shape,
    ...stepFacts.switch.shape,
    ...stepFacts['record-applied'].shape,
    ...stepFacts.watch.shape,
    ...stepFacts['rollback-prepare'].shape,
    ...stepFacts['rollback-switch'].shape,
  })
  .partial();

/** What the steps learn and later steps (and the report) need. Saved with the run. */
export type RunFacts = z.infer<typeof runFactsSchema>;

/** The step that writes each fact (for the error of an invalid record). */
const writerOf = new Map<string, string>(
  Object.entries(stepFacts).flatMap(([step, schema]) =>
    Object.keys(schema.shape).map((field): [string, string] => [field, step]),
  ),
);

/** The failure of one field of a run's record, for RUN_RECORD_INVALID. */
export interface RecordProblem {
  step: string;
  field: string;
  problem: string;
}

/** The path of an issue as `a.b[2].c`. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/** Validates a run's facts as read back; returns them or the first problem. */
export function parseFacts(raw: unknown): { facts: RunFacts } | { problem: RecordProblem } {
  const parsed = runFactsSchema.safeParse(raw);
  if (parsed.success) return { facts: parsed.data };
  const issue = parsed.error.issues[0];
  const field = issue ? issuePath(issue.path) : '';
  const top = typeof issue?.path[0] === 'string' ? issue.path[0] : '';
  return {
    problem: {
      step: writerOf.get(top) ?? '(the run)',
      field: field || '(the facts)',
      problem: issue?.message ?? 'not an object',
    },
  };
}
