/**
 * The network switch (seed Fig. 13–17 and 21–26): moves a service address from LC1 to LC2 with no
 * failed request, by one of three methods, journalled step by step and reversed on failure.
 */
export type {
  SwitchMethod,
  ServiceSignal,
  SwitchSide,
  MoveNic,
  HealthCheck,
  SwitchPlan,
  SwitchPlanInput,
  SwitchResult,
  SwitchRequest,
  CutAction,
  CutPolicy,
  FinalSyncPhases,
  ServiceWriteState,
  SwitchPhases,
} from './types.ts';
export { switchMethods } from './types.ts';
export { resolvePlan, parseSwitchMethod, isSwitchMethod, defaultCut } from './plan.ts';
export { cutControl, cutGate, cutPathPrefix, type GateOutcome } from './cut.ts';
export { defaultHealthCheck, checkHealth, type HealthOutcome, type HealthReport } from './health.ts';
export {
  switchSchema,
  SwitchJournal,
  type SwitchRecord,
  type SwitchState,
  type StepState,
} from './journal.ts';
export {
  runSwitch,
  recoverSwitches,
  preflightSwitch,
  describePhases,
  type SwitchDeps,
  type SwitchBinding,
  type RecoverDeps,
} from './run-switch.ts';
export { serviceSide, serviceSignals, signalScript, type ServiceSideOptions } from './bind.ts';
export { steerRuleset, countServiceConnections, type SteerMode, type SteerOptions } from './net-ops.ts';
export { stepRecords, type StepRecords } from './step-records.ts';
