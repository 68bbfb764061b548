export { runDemo, demoService, type DemoDriver, type DemoOptions, type DemoReport } from './demo.ts';
export { nginxDemoService, nginxDemoPackages, defaultImageCacheDir } from './nginx-demo.ts';
export { startArchiveMirror, type ArchiveMirror } from './archive-mirror.ts';
export { createClientHost, type ClientHost } from './client.ts';
export {
  startClientLoad,
  type ClientLoad,
  type ClientLoadOptions,
  type ClientLoadReport,
} from './client-load.ts';
export { makeVersionPatch } from './demo-patch.ts';
export { judgeDemo, demoTargets, type DemoJudgement } from './judge.ts';
