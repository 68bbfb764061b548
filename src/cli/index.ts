export { main } from './main.ts';
export { renderRun } from './commands/run.ts';
export { createProgressDisplay, describeProgress, type ProgressEvent } from './progress.ts';
