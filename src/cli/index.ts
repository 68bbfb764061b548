export { main } from './main.ts';
export { createProgressDisplay, describeProgress, type ProgressEvent } from './progress.ts';
