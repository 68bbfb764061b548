/**
 * What a rollout is, as data: a patch selection × a target set × a schedule × rate controls, with a
 * canary wave first and health-gated progression. `resolveRolloutSpec` validates an operator's
 * definition once into a complete ResolvedRolloutSpec; everything after works on the resolved form.
 */
import { z } from 'zod';
import { UnderstudyError } from '../../core/index.ts';

/** A count ("3") or a share of the targets ("10%"). */
const amount = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(\.\d+)?%$/)]);
export type Amount = z.infer<typeof amount>;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (24 h)');
const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof weekdays)[number];

export const windowSchema = z.object({
  /** IANA time zone of the group's servers, e.g. Europe/Paris. */
  timeZone: z.string().min(1),
  days: z
    .array(z.enum(weekdays))
    .min(1)
    .default([...weekdays]),
  /** Local wall-clock start. */
  start: hhmm,
  durationMinutes: z
    .number()
    .int()
    .positive()
    .max(7 * 24 * 60),
});
export type MaintenanceWindow = z.infer<typeof windowSchema>;

export const rolloutSpecSchema = z.object({
  name: z.string().min(1).max(100),
  patches: z
    .object({
      /** Only patches flagged security. */
      securityOnly: z.boolean().default(false),
      /** Approve a patch only once this many days have passed since the fleet first saw it. */
      minAgeDays: z.number().nonnegative().optional(),
      /** Exactly these patch names (still filtered by the two rules above when given). */
      explicit: z.array(z.string().min(1)).optional(),
    })
    .default({ securityOnly: false }),
  targets: z
    .object({
      /** LCs whose group is one of these (any group when absent). */
      groups: z.array(z.string().min(1)).optional(),
      /** LCs carrying every one of these labels with these values. */
      labels: z.record(z.string(), z.string()).default({}),
    })
    .default({ labels: {} }),
  /** Maintenance windows per group; a group without one may be patched at any time. */
  windows: z.record(z.string(), z.array(windowSchema).min(1)).default({}),
  canary: amount.default(1),
  maxConcurrency: amount.default('10%'),
  maxErrors: amount.default(0),
  /**
   * Wait for an administrator's approval by mail (a code bound to this rollout's exact patch set)
   * before the first wave.
   */
  requireApproval: z.boolean().default(false),
  /**
   * Roll a switched LC back to its unpatched original as soon as its agent reports it unhealthy
   * during the watch (it counts against max errors either way).
   */
  autoRollback: z.boolean().default(true),
  /** How long a wave's switched LCs must stay healthy before the next wave starts. */
  watchSeconds: z.number().nonnegative().default(600),
});
export type RolloutSpec = z.input<typeof rolloutSpecSchema>;
export type ResolvedRolloutSpec = z.output<typeof rolloutSpecSchema>;

export function resolveRolloutSpec(input: unknown): ResolvedRolloutSpec {
  const parsed = rolloutSpecSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UnderstudyError(
      'FLEET_ROLLOUT_INVALID',
      `rollout ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'is invalid'}`,
    );
  }
  for (const [group, list] of Object.entries(parsed.data.windows))
    for (const w of list) {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: w.timeZone });
      } catch {
        throw new UnderstudyError(
          'FLEET_ROLLOUT_INVALID',
          `rollout windows.${group}: "${w.timeZone}" is not a known time zone`,
          { hint: 'Use an IANA name such as Europe/Paris or UTC.' },
        );
      }
    }
  return parsed.data;
}

/**
 * An amount resolved against a total: a count as is, a percentage rounded up, at least `min`.
 * `canary: '5%'` of 30 targets is 2.
 */
export function resolveAmount(value: Amount, total: number, min = 0): number {
  const n = typeof value === 'number' ? value : Math.ceil((Number(value.slice(0, -1)) / 100) * total);
  return Math.max(min, Math.min(n, Math.max(total, min)));
}
