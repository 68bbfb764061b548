/** The public surface of fleet/agent. */
export {
  FleetAgent,
  type AgentOptions,
  type HostRunner,
  type RunRequest,
  type RunOutcome,
  type HealthReport,
  type LcInventory,
  type PendingPackage,
} from './agent.ts';
export {
  AgentJournal,
  agentJournalSchema,
  type JournalEntry,
  type JournalState,
  type Outcome,
} from './journal.ts';
export { FakeHostRunner, type FakeRunnerOptions } from './fake-runner.ts';
export {
  AppHostRunner,
  agentRunsSchema,
  runSummary,
  type AppRunnerOptions,
  type AgentRunOptions,
} from './app-runner.ts';
export { enrolOverHttps, readAgentConfig, agentConfigFile, type AgentConfig } from './enrol-client.ts';
