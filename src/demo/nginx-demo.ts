/**
 * The main job on a real server (`understudy demo`, driver lxc): a throwaway host with two storage pools,
 * LC1 an unprivileged LXC system container booting systemd from a Debian image with unmodified nginx from
 * the host's Debian archive, serving a site; an idle standby LC2 on the other pool; the host's Debian
 * security archive as the monitor's apt feed, verified with debian-archive-keyring, whose newer nginx
 * (with nginx-common, the set that moves together) is registered and marked for LC1 from LC1's own dpkg
 * status; beside nginx, the project's key-value store with its data on the application disk (behind
 * nginx at /kv/, kv-service.ts); a real client in its own network namespace, reading the site and
 * writing keys; and the patch run (Fig. 7) under that load, stateful: every write the store
 * acknowledged, before or during the run, is read back from the patched LC afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnderstudyError, createLogger, silentLogger } from '../core/index.ts';
import { addPool, forgetClientHost, getPool, recordClientHost } from '../host/index.ts';
import { assetsDir, buildImage } from '../images/index.ts';
import { getLc, type ServiceInput } from '../inventory/index.ts';
import { createLc, startLc } from '../app/index.ts';
import {
  addFeed,
  debianArchiveKeyring,
  dpkgStatusPath,
  pendingUpdates,
  realFetcher,
} from '../monitor/index.ts';
import { startRun } from '../run/index.ts';
import { startArchiveMirror } from './archive-mirror.ts';
import { createClientHost } from './client.ts';
import { startClientLoad } from './client-load.ts';
import { installKvService, nginxKvService, startKvService, withKvLocations } from './kv-service.ts';
import type { DemoContext, DemoReport } from './types.ts';

/** nginx with the key-value store behind it, as the demo's LC declares it (kv-service.ts). */
export const nginxDemoService: ServiceInput = nginxKvService;
/** Keys written before the run (then read back after it, with every write acknowledged during it). */
const keysBefore = 200;

/** The image's packages: the same list as the LXC tests' image, so a host that ran them has it cached. */
export const nginxDemoPackages = ['nginx', 'kmod', 'curl'];
const defaultSite = '/etc/nginx/sites-available/default';

/** The debootstrapped images are kept here between demos (keyed by their inputs). */
export const defaultImageCacheDir = process.env.UNDERSTUDY_IMAGE_CACHE ?? '/var/cache/understudy';

export async function runNginxDemo(
  c: DemoContext,
): Promise<Omit<DemoReport, 'stateDir' | 'driver' | 'bridge' | 'wallMs'>> {
  const { app, prefix, progress, cleanup } = c;
  await addPool({ db: app.db, stateDir: app.stateDir, name: 'standby', sizeBytes: 4 * 1024 ** 3 });
  progress(
    `image: Debian bookworm with systemd and unmodified nginx (debootstrap from the host's archive, cached in ${c.imageCacheDir})`,
  );
  const imageStarted = performance.now();
  await buildImage({
    db: app.db,
    recipe: 'debian',
    name: 'debian-nginx',
    suite: 'bookworm',
    packages: nginxDemoPackages,
    pool: getPool(app.db, 'main'),
    cacheDir: c.imageCacheDir,
  });
  progress(`image: ready in ${((performance.now() - imageStarted) / 1000).toFixed(1)} s`);
  const host = await c.host();
  const service = `${prefix}.10`;
  const lc = (name: string, o: { octet: number; cpus: string; pool: string; extra: object }) =>
    createLc(app.db, host, {
      name,
      image: 'debian-nginx',
      driver: 'lxc',
      cpus: o.cpus,
      memoryMb: 256,
      systemDiskMb: 1024,
      appDiskMb: 256,
      appMountPath: '/srv/app',
      pool: o.pool,
      addresses: [`${prefix}.${o.octet}`],
      ...o.extra,
    });
  progress(
    `lc1: the active LC, an unprivileged LXC container booting systemd, nginx at ${service} (CPU0, 256 MB)`,
  );
  const lc1 = await lc('lc1', {
    octet: 10,
    cpus: '0',
    pool: 'main',
    extra: { role: 'active', services: [nginxDemoService] },
  });
  // The administrator's changes to a configuration file of nginx-common (kept through the upgrade: apt
  // keeps changed configuration files): every answer names the LC that served it, and the store sits
  // behind nginx.
  const site = (await host.driver.readFile(lc1, defaultSite)).toString();
  await host.driver.writeFile(
    lc1,
    defaultSite,
    withKvLocations(site).replace(
      'server_name _;',
      'server_name _;\n\tadd_header X-Served-By $hostname always;',
    ),
  );
  progress('lc1: with the key-value store beside nginx (Node.js, data on the application disk at /srv/app)');
  await installKvService(host, lc1);
  await startLc(app.db, host, 'lc1', { timeoutMs: 120_000 });
  await startKvService(host, { lc: 'lc1', healthUrl: `http://${service}/health`, timeoutMs: 60_000 });
  const cpus = os.availableParallelism() > 1 ? '1' : '0';
  progress(`lc2: the idle standby (CPU${cpus}, 256 MB, disks on pool standby)`);
  await lc('lc2', { octet: 11, cpus, pool: 'standby', extra: { role: 'standby' } });

  const nginxVersion = async (name: string): Promise<string> =>
    (await host.driver.exec(name, ['dpkg-query', '-W', '-f', '${Version}', 'nginx'])).stdout.trim();
  const versionBefore = await nginxVersion('lc1');

  progress("feed: the host's Debian security archive (apt's verified lists), served on the demo's bridge");
  // The copy of the archive lives only while the update is taken in: the .debs are in the catalogue then.
  const archiveRoot = path.join(app.stateDir, 'archive');
  const mirror = await startArchiveMirror({
    root: archiveRoot,
    listenAddress: host.network.hostAddress.split('/')[0] ?? '',
  });
  let moving: string;
  try {
    addFeed(app.db, {
      name: 'debian-security',
      kind: 'apt',
      url: mirror.url,
      intervalSeconds: 3600,
      options: {
        suite: mirror.source.suite,
        components: mirror.source.components,
        architectures: [mirror.architecture],
        keyring: debianArchiveKeyring,
        fingerprints: [],
        trustKeyring: true,
      },
    });
    const updates = async (apply: boolean) =>
      pendingUpdates({
        db: app.db,
        catalogue: app.catalogue,
        fetcher: realFetcher,
        workDir: path.join(app.stateDir, 'cache', 'monitor'),
        lc: 'lc1',
        dpkgStatus: await host.driver.readFile(getLc(app.db, 'lc1'), dpkgStatusPath),
        packages: ['nginx'],
        apply,
      });
    const pending = await updates(false);
    if (!pending.updates.some((u) => u.package === 'nginx'))
      throw new UnderstudyError(
        'DEMO_NO_SECURITY_UPDATE',
        `${mirror.source.uri} ${mirror.source.suite} has no nginx newer than ${versionBefore}, the image's`,
        { hint: 'apt-cache policy nginx shows the versions of both archives.' },
      );
    for (const u of pending.updates)
      await mirror.addDeb({ package: u.package, version: u.candidate, filename: u.filename });
    const applied = await updates(true);
    moving = applied.updates.map((u) => `${u.package} ${u.installed ?? '(new)'} → ${u.candidate}`).join(', ');
  } finally {
    await mirror.close();
    fs.rmSync(archiveRoot, { recursive: true, force: true });
  }
  progress(`patch: ${moving} (verified against the archive's signed index) marked for lc1's next run`);

  progress(`data: ${keysBefore} keys written to the store on lc1 (each acknowledged once on disk)`);
  for (let i = 0; i < keysBefore; i++) {
    const response = await fetch(`http://${service}/kv/before-${i}`, {
      method: 'PUT',
      body: `value-${i}`,
      signal: AbortSignal.timeout(5000),
    });
    await response.arrayBuffer();
    if (response.status !== 200)
      throw new UnderstudyError('INTERNAL', `writing the demo's data failed: HTTP ${response.status}`);
  }

  const client = await createClientHost({ bridge: host.network.bridge, address: `${prefix}.200/24` });
  recordClientHost(app.db, client);
  cleanup.unshift(async () => {
    await client.dispose();
    forgetClientHost(app.db, client.netns);
  });
  const rate = c.rate;
  progress(
    `load: a client at ${prefix}.200 sends ${rate} requests/s to nginx (45 % new connections, 45 % keep-alive, 10 % writes to the store)`,
  );
  const load = await startClientLoad({
    netns: client.netns,
    url: `http://${service}/`,
    rate,
    // An upper bound only (the load is stopped after the run): the scan and copy of a Debian system
    // disk take minutes on a busy host.
    maxDurationS: 1200,
    mix: 'newconn=0.45,keepalive=0.45,write=0.1',
  });
  let loadStopped = false;
  cleanup.unshift(async () => {
    if (!loadStopped) await load.stop().catch(() => undefined);
  });
  await new Promise((r) => setTimeout(r, 2000)); // steady state before the run

  progress('run: patching lc1 without stopping nginx or losing a write');
  load.mark('run-start');
  const run = await startRun(
    {
      lc: 'lc1',
      method: c.method,
      stateful: true,
      scanDatabase: path.join(assetsDir, 'clamav/eicar-test.hdb'),
      bootTimeoutMs: 240_000,
    },
    {
      db: app.db,
      host,
      catalogue: app.catalogue,
      logger: process.env.UNDERSTUDY_LOG_LEVEL ? createLogger() : silentLogger,
      onEvent: c.onEvent(load),
    },
  );
  await new Promise((r) => setTimeout(r, 2000)); // steady state after the switch
  const report = await load.stop();
  loadStopped = true;
  const active = run.state === 'switched' ? 'lc2' : 'lc1';

  progress('data: reading back every key written before and every write acknowledged during the run');
  const expected = new Map<string, string>();
  for (let i = 0; i < keysBefore; i++) expected.set(`/kv/before-${i}`, `value-${i}`);
  for (const w of report.ackedWrites) expected.set(w.path, w.value);
  const lost: string[] = [];
  for (const [key, value] of expected) {
    const response = await fetch(`http://${service}${key}`, { signal: AbortSignal.timeout(5000) });
    const body = await response.text();
    if (response.status !== 200 || body !== value) lost.push(key);
  }
  return {
    service:
      'Debian nginx in an unprivileged LXC container (systemd), with the key-value store beside it (data on the application disk)',
    client: client.netns,
    patch: moving,
    run,
    load: report,
    versionBefore,
    versionAfter: await nginxVersion(active),
    dataChecked: expected.size,
    dataLost: lost,
    stateful: true,
  };
}
