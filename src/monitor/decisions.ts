/**
 * Turning a decision into the patch table (SPEC §6, 1808) and starting the patch run (1809).
 * Approved patches get "apply at next run" on every managed LC they concern (deb patches: the LCs
 * that have the package installed; other formats: every managed LC). The decision is recorded per
 * patch, so auto-approval never overrides an administrator.
 */
import type { Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import type { Catalogue, Patch, PatchCategory } from '../catalogue/index.ts';
import type { Decision } from '../mail/index.ts';
import type { ManagedLcs, StartPatchRun } from './lcs.ts';

export interface ApplyDeps {
  db: Db;
  catalogue: Catalogue;
  managedLcs: ManagedLcs;
  startPatchRun?: StartPatchRun;
  logger: Logger;
  now: () => Date;
}

async function lcsConcerned(deps: ApplyDeps, patch: Patch): Promise<string[]> {
  const lcs = await deps.managedLcs.list();
  if (patch.format !== 'deb' || !patch.package) return lcs;
  const out: string[] = [];
  for (const lc of lcs) if ((await deps.managedLcs.installedPackages(lc)).has(patch.package)) out.push(lc);
  return out;
}

/** Applies a decision on `patches`; returns the LCs whose patch run was started. */
export async function applyDecision(
  deps: ApplyDeps,
  o: { patches: readonly string[]; decision: Decision; by: string; via: 'mail' | 'link' | 'api' | 'auto' },
): Promise<string[]> {
  const at = deps.now().toISOString();
  const record = deps.db.prepare(
    `INSERT INTO patch_decisions (patch, decision, decided_by, via, decided_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (patch) DO UPDATE SET decision = excluded.decision, decided_by = excluded.decided_by, via = excluded.via, decided_at = excluded.decided_at`,
  );
  const approved = o.decision.kind !== 'reject';
  const affected = new Set<string>();
  for (const name of o.patches) {
    record.run(name, approved ? 'approved' : 'rejected', o.by, o.via, at);
    const patch = deps.catalogue.getPatch(name);
    for (const lc of await lcsConcerned(deps, patch)) {
      deps.catalogue.markNextRun(name, lc, approved);
      if (approved) affected.add(lc);
    }
  }
  deps.logger.info(
    {
      event: 'decision.applied',
      decision: o.decision.kind,
      by: o.by,
      via: o.via,
      patches: o.patches,
      lcs: [...affected],
    },
    'decision applied',
  );
  const lcs = [...affected].sort();
  if (approved && lcs.length > 0 && deps.startPatchRun) {
    await deps.startPatchRun({ lcs, patches: [...o.patches], reason: `approved by ${o.by} via ${o.via}` });
  }
  return lcs;
}

/**
 * Approves, on behalf of "auto", every undecided patch of a category with an auto-approval delay
 * whose first sighting is at least that many days old.
 */
export async function autoApprove(
  deps: ApplyDeps,
  rules: Partial<Record<PatchCategory, number>>,
): Promise<string[]> {
  const entries = Object.entries(rules) as [PatchCategory, number][];
  if (entries.length === 0) return [];
  const decided = new Set(
    (deps.db.prepare('SELECT patch FROM patch_decisions').all() as { patch: string }[]).map((r) => r.patch),
  );
  const nowMs = deps.now().getTime();
  const due = deps.catalogue
    .listPatches()
    .filter((p) => !decided.has(p.name))
    .filter((p) =>
      entries.some(
        ([category, days]) =>
          p.categories.includes(category) && Date.parse(p.firstSeenAt) + days * 86_400_000 <= nowMs,
      ),
    )
    .map((p) => p.name);
  if (due.length === 0) return [];
  await applyDecision(deps, { patches: due, decision: { kind: 'approve-all' }, by: 'auto', via: 'auto' });
  return due;
}
