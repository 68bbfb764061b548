/**
 * What each step of a run returns (its summary, kept in the step's journal row), as schemas: a step's
 * `run` is typed by its schema, and the journal validates every output it reads back.
 */
import { z } from 'zod';
import { switchResultSchema, stepFacts } from './facts.ts';

const skipped = z.object({ skipped: z.union([z.literal(true), z.string()]) });

const copied = stepFacts.copy.shape.copies.element;

export const stepOutputs = {
  'find-standby': z.object({ standby: z.string().optional(), versionBefore: z.string().optional() }),
  scan: z.union([skipped, z.object({ files: z.number(), durationMs: z.number(), database: z.string() })]),
  'stop-standby': z.object({ outcome: z.enum(['clean', 'killed', 'was-stopped']), durationMs: z.number() }),
  copy: z.union([skipped, copied]),
  'write-patches': z.object({ patches: z.array(z.string()), init: z.enum(['systemd', 'rc.d']) }),
  'boot-standby': z.object({
    results: z
      .array(
        z.object({
          name: z.string(),
          result: z.enum(['ok', 'failed']),
          exitCode: z.number(),
          deb: stepFacts['boot-standby'].shape.patchResults.element.shape.deb,
        }),
      )
      .optional(),
    restart: stepFacts['boot-standby'].shape.restartNeeds.optional(),
  }),
  'reboot-standby': z.object({ reboots: z.number() }),
  'check-standby': z.object({
    health: z.string(),
    unit: z.string(),
    version: z.string().optional(),
    verified: z.array(z.object({ name: z.string(), outcome: z.string(), detail: z.string() })),
  }),
  switch: switchResultSchema,
  'record-applied': z.object({ applied: z.array(z.string()) }),
  watch: z.object({
    outcome: stepFacts.watch.shape.watchOutcome,
    detail: z.string(),
    watchedMs: z.number(),
  }),
  'rollback-prepare': z.object({ lc: z.string() }),
  'rollback-presync': z.union([
    skipped,
    z.object({
      durationMs: z.number(),
      passes: z.number(),
      files: z.number(),
      outpaced: z.array(z.string()),
    }),
  ]),
  'rollback-switch': switchResultSchema,
  'rollback-finish': z.object({ lc: z.string(), nics: z.array(z.string()) }),
} as const;

export type OutputKind = keyof typeof stepOutputs;
export type StepOutput<K extends OutputKind> = z.infer<(typeof stepOutputs)[K]>;

/** The kind of output of a journalled step name (`copy-<disk>` steps share one); undefined if unknown. */
export function outputKindOf(step: string): OutputKind | undefined {
  if (step.startsWith('copy-')) return 'copy';
  return isOutputKind(step) ? step : undefined;
}

const isOutputKind = (step: string): step is OutputKind => Object.hasOwn(stepOutputs, step);
