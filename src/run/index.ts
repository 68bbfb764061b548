export { runSchema } from './schema.ts';
export {
  startRun,
  resumeRun,
  rollbackRun,
  recoverRuns,
  listRuns,
  getRun,
  resolveRunOptions,
  type RunDeps,
} from './orchestrator.ts';
export { scanTree, type ScanResult } from './scan.ts';
export { summarizePatchFailure } from './patch-failure.ts';
export { treeChecksSettled, treeMismatchOf } from './tree-check.ts';
export {
  renderPatchTable,
  parsePatchReport,
  standbyPaths,
  type PatchReportEntry,
  type PatchReport,
  type PackageOutcome,
  type RestartNeeds,
} from './patch-table.ts';
export { serviceControl, switchHealthOf, type ServiceControl } from './service-side.ts';
export {
  checkServiceHealth,
  checkRunServiceHealth,
  type ServiceHealth,
  type ServiceHealthQuery,
} from './service-health.ts';
export type {
  RunOptions,
  ResolvedRunOptions,
  RunRecord,
  RunState,
  StepRecord,
  StepState,
  RunEvent,
} from './types.ts';
export type { RunFacts, RunSwitchResult } from './facts.ts';
export { bindLcSwitch, type LcSwitchRequest } from './bind-switch.ts';
export { RunJournal } from './journal.ts';
export {
  bindSwitch,
  bindPlannedSwitch,
  syncDisks,
  catchUpDisks,
  type DisksSyncReport,
  syncNicRecords,
  recordSwitch,
  switchedService,
  type BindSwitchOptions,
} from './switch-binding.ts';
export { crashPoint } from './crash-point.ts';
export {
  verifyPatchesOnDisk,
  parseDpkgStatus,
  parseManifest,
  type PatchVerification,
} from './verify-standby.ts';
