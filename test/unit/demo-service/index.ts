export { startDemo, demoServerPath, type DemoProcess } from './demo-process.ts';
