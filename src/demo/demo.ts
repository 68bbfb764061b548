/**
 * The main job, end to end on a fresh host (`understudy demo`): a host with two storage pools, LC1
 * serving, an idle standby LC2 on the other pool, a security patch for LC1, a real client sending
 * >= 1,000 requests/s — and the patch run (Fig. 7) under that load. Prints a report and tears everything
 * down (unless --keep). Two demos: `lxc` (default), real Debian nginx in an unprivileged LXC container,
 * with the key-value store beside it, patched with the security archive's nginx (nginx-demo.ts);
 * `namespace` (retired for operators, the project's tests only), the busybox demo service with data in a namespace LC,
 * patched from 1.0.0 to 1.0.1 by a diff (this file).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnderstudyError, createLogger, silentLogger } from '../core/index.ts';
import { sha256File } from '../catalogue/index.ts';
import {
  addPool,
  destroyHost,
  forgetClientHost,
  getPool,
  initHost,
  recordClientHost,
} from '../host/index.ts';
import { assertDriverUsable } from '../drivers/index.ts';
import { buildImage, assetsDir } from '../images/index.ts';
import { listLcs } from '../inventory/index.ts';
import { createLc, destroyLc, openApp, startLc, type HostContext } from '../app/index.ts';
import { startRun } from '../run/index.ts';
import { createClientHost } from './client.ts';
import { startClientLoad } from './client-load.ts';
import { makeVersionPatch } from './demo-patch.ts';
import { defaultImageCacheDir, runNginxDemo } from './nginx-demo.ts';
import type { DemoContext, DemoOptions, DemoReport } from './types.ts';

export type { DemoContext, DemoDriver, DemoOptions, DemoReport } from './types.ts';

/**
 * The demo service as the LC declares it: a pid-file process of the busybox image (/etc/rc.d/S50demo)
 * that drains on SIGUSR1 (Connection: close, idle keep-alive sockets closed) and undrains on SIGUSR2,
 * is held by SIGSTOP/SIGCONT, keeps its data under /srv/data, tells its version at /version and speaks
 * the switch's cut protocol.
 */
export const demoService = {
  name: 'demo',
  pidFile: '/run/demo.pid',
  ports: [80],
  health: { kind: 'http', path: '/health', status: 200 },
  drain: { kind: 'signal', signal: 'USR1' },
  undrain: { kind: 'signal', signal: 'USR2' },
  hold: { kind: 'signal' },
  data: ['/srv/data'],
  versionPath: '/version',
  cut: 'http',
} as const;

async function get(url: string): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const progress = options.progress ?? (() => undefined);
  const started = performance.now();
  const driver = options.driver ?? 'lxc';
  // Refused before anything is set up when the driver is retired (namespace outside the project's tests).
  assertDriverUsable({ lc: 'lc1', driver, action: 'create' });
  const stateDir = options.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-demo-'));
  const third = crypto.randomInt(1, 254);
  const prefix = `198.18.${third}`;
  const app = openApp(stateDir);
  const cleanup: (() => Promise<unknown>)[] = [];
  let hostContext: HostContext | undefined;
  const context: DemoContext = {
    app,
    prefix,
    rate: options.rate ?? 1000,
    method: options.method ?? 'instant',
    imageCacheDir: options.imageCacheDir ?? defaultImageCacheDir,
    progress,
    cleanup,
    async host() {
      if (hostContext) return hostContext;
      const host = await app.host();
      hostContext = host;
      cleanup.unshift(async () => {
        for (const lc of listLcs(app.db)) await destroyLc(app.db, host, lc.name, { force: true });
      });
      return host;
    },
    onEvent: (load) => (event) => {
      if (event.step === 'switch' && event.state === 'running') load.mark('switch-start');
      if (event.step === 'switch' && (event.state === 'done' || event.state === 'failed'))
        load.mark('switch-end');
      if (event.state === 'note') {
        // The switch's notices before it (slow writes) and where its hold went.
        if (
          event.step === 'switch' &&
          /^cut by|write\(s\) in flight|does not report its writes/.test(event.message ?? '')
        )
          progress(`  note    switch: ${event.message ?? ''}`);
        return;
      }
      progress(
        `  ${event.state.padEnd(7)} ${event.step}${event.durationMs === undefined ? '' : ` (${(event.durationMs / 1000).toFixed(2)} s)`}${event.message ? `: ${event.message.split('\n')[0]}` : ''}`,
      );
    },
  };
  try {
    progress(`host: state in ${stateDir}, network ${prefix}.0/24`);
    await initHost({ db: app.db, stateDir, subnet: `${prefix}.0/24`, poolSizeBytes: 4 * 1024 ** 3 });
    cleanup.push(() => destroyHost(app.db));
    const result = driver === 'lxc' ? await runNginxDemo(context) : await runBusyboxDemo(context);
    const bridge = (await context.host()).network.bridge;
    return { stateDir, driver, bridge, ...result, wallMs: performance.now() - started };
  } finally {
    if (!options.keep) {
      progress('teardown: removing the LCs, the client, the pools and the bridge');
      for (const step of cleanup)
        await step().catch((error: unknown) => progress(`teardown: ${(error as Error).message}`));
      app.close();
      if (!options.stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
    } else app.close();
  }
}

/** The busybox demo service with data in namespace LCs, patched from 1.0.0 to 1.0.1 by a diff. */
async function runBusyboxDemo(
  c: DemoContext,
): Promise<Omit<DemoReport, 'stateDir' | 'driver' | 'bridge' | 'wallMs'>> {
  const { app, prefix, progress, cleanup } = c;
  await addPool({ db: app.db, stateDir: app.stateDir, name: 'standby', sizeBytes: 3 * 1024 ** 3 });
  progress('image: building busybox (busybox init, start-up scripts, Node.js, demo service)');
  await buildImage({
    db: app.db,
    recipe: 'busybox',
    pool: getPool(app.db, 'main'),
    cacheDir: app.paths.cache,
  });
  const host = await c.host();
  const service = `${prefix}.10`;
  progress(`lc1: the active LC, serving the demo service at ${service} (CPU0, 128 MB, disks on pool main)`);
  await createLc(app.db, host, {
    name: 'lc1',
    image: 'busybox',
    driver: 'namespace',
    cpus: '0',
    memoryMb: 128,
    systemDiskMb: 512,
    appDiskMb: 256,
    addresses: [service],
    role: 'active',
    services: [demoService],
  });
  await startLc(app.db, host, 'lc1');
  const cpus = os.availableParallelism() > 1 ? '1' : '0';
  progress(
    `lc2: the idle standby (CPU${cpus}, 128 MB, disks on pool standby — the seed's DISK3/DISK4 on other media)`,
  );
  await createLc(app.db, host, {
    name: 'lc2',
    image: 'busybox',
    driver: 'namespace',
    cpus,
    memoryMb: 128,
    systemDiskMb: 512,
    appDiskMb: 256,
    pool: 'standby',
    addresses: [`${prefix}.11`],
    role: 'standby',
  });

  progress('data: 200 keys and a note written to lc1');
  for (let i = 0; i < 200; i++) {
    const response = await fetch(`http://${service}/kv/before-${i}`, {
      method: 'PUT',
      body: `value-${i}`,
      signal: AbortSignal.timeout(5000),
    });
    if (response.status !== 200)
      throw new UnderstudyError('INTERNAL', `writing demo data failed: HTTP ${response.status}`);
  }
  await fetch(`http://${service}/notes`, {
    method: 'POST',
    body: 'written before the patch',
    signal: AbortSignal.timeout(5000),
  });
  const versionBefore = (JSON.parse((await get(`http://${service}/version`)).body) as { version: string })
    .version;

  const catalogue = app.catalogue;
  // The catalogue keeps its own copy of the patch file; the one made here is only its source.
  const patchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-demo-patch-'));
  try {
    const patchFile = await makeVersionPatch({
      dir: patchDir,
      from: '1.0.0',
      to: '1.0.1',
      name: 'demo-1.0.1',
    });
    await catalogue.registerPatch({
      file: patchFile,
      name: 'demo-1.0.1',
      categories: ['security'],
      format: 'diff',
      sha256: (await sha256File(patchFile)).sha256,
      description: 'Demo service 1.0.1 (security fix)',
    });
  } finally {
    fs.rmSync(patchDir, { recursive: true, force: true });
  }
  catalogue.markNextRun('demo-1.0.1', 'lc1', true);
  progress('patch: demo-1.0.1 (security, diff) registered and marked "apply at next run" for lc1');

  const client = await createClientHost({ bridge: host.network.bridge, address: `${prefix}.200/24` });
  // Recorded, so that `host destroy` removes it when the demo host is kept (--keep).
  recordClientHost(app.db, client);
  cleanup.unshift(async () => {
    await client.dispose();
    forgetClientHost(app.db, client.netns);
  });
  progress(
    `load: a client at ${prefix}.200 sends ${c.rate} requests/s (new connections, keep-alive, slow uploads, writes)`,
  );
  const load = await startClientLoad({
    netns: client.netns,
    url: `http://${service}/`,
    rate: c.rate,
    maxDurationS: 180,
  });
  let loadStopped = false;
  cleanup.unshift(async () => {
    if (!loadStopped) await load.stop().catch(() => undefined);
  });
  await new Promise((r) => setTimeout(r, 2000)); // steady state before the run

  progress('run: patching lc1 without stopping its service');
  load.mark('run-start'); // the 2 s before are the baseline without a switch
  const run = await startRun(
    {
      lc: 'lc1',
      method: c.method,
      scanDatabase: path.join(assetsDir, 'clamav/eicar-test.hdb'),
    },
    {
      db: app.db,
      host,
      catalogue,
      logger: process.env.UNDERSTUDY_LOG_LEVEL ? createLogger() : silentLogger,
      onEvent: c.onEvent(load),
    },
  );
  await new Promise((r) => setTimeout(r, 2000)); // steady state after the switch
  const report = await load.stop();
  loadStopped = true;

  progress('data: checking every key written before and every write acknowledged during the run');
  const lost: string[] = [];
  const expected = new Map<string, string>();
  for (let i = 0; i < 200; i++) expected.set(`/kv/before-${i}`, `value-${i}`);
  for (const w of report.ackedWrites) expected.set(w.path, w.value);
  for (const [key, value] of expected) {
    const got = await get(`http://${service}${key}`);
    if (got.status !== 200 || got.body !== value) lost.push(key);
  }
  const versionAfter = (JSON.parse((await get(`http://${service}/version`)).body) as { version: string })
    .version;
  return {
    service: 'the busybox demo service in a namespace LC',
    client: client.netns,
    patch: 'demo-1.0.1 (diff, 1.0.0 → 1.0.1)',
    run,
    load: report,
    versionBefore,
    versionAfter,
    stateful: true,
    dataChecked: expected.size,
    dataLost: lost,
  };
}
