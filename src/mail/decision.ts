/**
 * An administrator's decision on a notified set of patches, and its canonical text (what the
 * approval code is bound to).
 */
import { UnderstudyError } from '../core/index.ts';

/** approve-all: every patch of the challenge; approve: only the named ones (a subset); reject: none. */
export type Decision = { kind: 'approve-all' } | { kind: 'approve'; patches: string[] } | { kind: 'reject' };

/** The canonical text: `approve-all`, `reject` or `approve:<name>,<name>` (sorted, unique). */
export function canonicalDecision(decision: Decision): string {
  if (decision.kind === 'approve') return `approve:${[...new Set(decision.patches)].sort().join(',')}`;
  return decision.kind;
}

/**
 * Parses what an administrator writes: "approve all" / "approve-all", "reject", or
 * "approve: name1, name2" (also "approve name1 name2"). Throws INVALID_ARGUMENT otherwise.
 */
export function parseDecision(text: string): Decision {
  const t = text.trim().replace(/\s+/g, ' ');
  if (/^(approve[- ]all|approve)$/i.test(t)) return { kind: 'approve-all' };
  if (/^reject$/i.test(t)) return { kind: 'reject' };
  const some = /^approve\s*[: ]\s*(.+)$/i.exec(t);
  if (some) {
    const patches = (some[1] ?? '').split(/[\s,]+/).filter(Boolean);
    if (patches.length > 0) return { kind: 'approve', patches: [...new Set(patches)].sort() };
  }
  throw new UnderstudyError('INVALID_ARGUMENT', `Decision "${text.slice(0, 80)}" is not understood`, {
    hint: 'Write "approve all", "approve: <patch>, <patch>" or "reject".',
  });
}
