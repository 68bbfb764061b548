export { runDemo, demoService, type DemoOptions, type DemoReport } from './demo.ts';
export { createClientHost, type ClientHost } from './client.ts';
export {
  startClientLoad,
  type ClientLoad,
  type ClientLoadOptions,
  type ClientLoadReport,
} from './client-load.ts';
export { makeVersionPatch } from './demo-patch.ts';
export { judgeDemo, demoTargets, type DemoJudgement } from './judge.ts';
