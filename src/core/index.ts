export { UnderstudyError, isUnderstudyError, isErrno, type UnderstudyErrorOptions } from './errors.ts';
export { errorCatalogue, type ErrorCode } from './error-codes.ts';
export {
  exec,
  execFailure,
  spawnProcess,
  formatArgv,
  debianPackageFor,
  trackedChildren,
  killTrackedChildren,
  realRunner,
  observeExec,
  type ExecRecord,
  type ExecOptions,
  type ExecResult,
  type SpawnOptions,
  type SpawnedProcess,
  type CommandRunner,
} from './exec.ts';
export {
  createLogger,
  silentLogger,
  redactedPaths,
  redactUrl,
  serializeRequest,
  logSerializers,
  type Logger,
} from './log.ts';
export { requireStrongToken, minTokenLength } from './token-strength.ts';
export { resolveStateDir, statePaths, defaultStateDir, type StatePaths } from './state-dir.ts';
export { requireRoot } from './preconditions.ts';
export { sleep, waitFor } from './sleep.ts';
export { checkRelativePath, relativePathProblem } from './relative-path.ts';
export { parseConfigYaml } from './yaml.ts';
export { createOwner, isOwnerAlive, processIdentity, processOwner, type Owner } from './owner.ts';
