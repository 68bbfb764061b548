/**
 * A throwaway understudy host for end-to-end tests: its own state dir, a loop-image pool, a bridge on a
 * random /24 inside 198.19.0.0/16 and the busybox image. `dispose()` removes all of it, even after a
 * failed test, and only what it made.
 */
import crypto from 'node:crypto';
import { createClientHost, demoService, type ClientHost } from '../../src/demo/index.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exec, spawnProcess, type ExecResult } from '../../src/core/index.ts';
import { destroyHost, getPool, initHost } from '../../src/host/index.ts';
import { buildImage } from '../../src/images/index.ts';
import { listLcs } from '../../src/inventory/index.ts';
import { createLc, destroyLc, openApp, startLc, type HostContext, type App } from '../../src/app/index.ts';
import type { LcRequest } from '../../src/inventory/index.ts';
import { testDriversVariable } from '../../src/drivers/index.ts';

/**
 * Marks this process (and the CLI children it starts) as the project's test suite, so the namespace
 * driver, retired for operators, runs here (scripts/run-tests.sh sets the same for every test file; this
 * covers a file run on its own and the benchmarks that use this fixture).
 */
export function enableTestDrivers(): void {
  const enabled = (process.env[testDriversVariable] ?? '').split(',').filter(Boolean);
  if (!enabled.includes('namespace')) process.env[testDriversVariable] = [...enabled, 'namespace'].join(',');
}
enableTestDrivers();

export const repoRoot = path.resolve(import.meta.dirname, '../..');
/** The images whose start-up scripts run the demo service (src/demo's demoService). */
export const demoImages = ['busybox', 'debian'];

export interface TestHost {
  stateDir: string;
  /** First three octets of the test subnet, e.g. "198.19.42". */
  prefix: string;
  subnet: string;
  app: App;
  host: HostContext;
  /**
   * Creates and (by default) starts an LC from the busybox image, on the namespace driver (the fast
   * test driver) unless the request names another. An active LC of an image that runs the demo
   * service (busybox, debian minbase) declares it, unless the request gives its services.
   */
  lc(request: Partial<LcRequest> & { name: string }, options?: { start?: boolean }): Promise<void>;
  /** Runs the understudy CLI against this host in a child process. */
  cli(
    args: readonly string[],
    options?: { okCodes?: number[]; env?: Record<string, string> },
  ): Promise<ExecResult>;
  dispose(): Promise<void>;
}

export async function createTestHost(
  options: {
    images?: string[];
    poolSize?: number;
    /** An empty directory the caller owns (e.g. a small filesystem) instead of a fresh temp dir; emptied by dispose. */
    stateDir?: string;
    /** A block device for the main pool instead of a loop image in the state dir. */
    poolDevice?: string;
  } = {},
): Promise<TestHost> {
  const stateDir = options.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-test-'));
  const third = crypto.randomInt(1, 254);
  const prefix = `198.19.${third}`;
  const subnet = `${prefix}.0/24`;
  const app = openApp(stateDir);
  const dispose = async (): Promise<void> => {
    try {
      const host = await app.hostIfReady().catch(() => undefined);
      if (host)
        for (const lc of listLcs(app.db))
          await destroyLc(app.db, host, lc.name, { force: true }).catch((e: unknown) => console.error(e));
      await destroyHost(app.db).catch((e: unknown) => console.error(e));
    } finally {
      app.close();
      if (options.stateDir)
        for (const entry of fs.readdirSync(stateDir))
          fs.rmSync(path.join(stateDir, entry), { recursive: true, force: true });
      else fs.rmSync(stateDir, { recursive: true, force: true });
    }
  };
  try {
    await initHost({
      db: app.db,
      stateDir,
      subnet,
      poolSizeBytes: options.poolSize ?? 3 * 1024 ** 3,
      device: options.poolDevice,
    });
    for (const recipe of options.images ?? ['busybox']) {
      await buildImage({
        db: app.db,
        recipe,
        pool: getPool(app.db, 'main'),
        cacheDir: process.env.UNDERSTUDY_TEST_CACHE ?? '/var/cache/understudy-test',
      });
    }
    const host = await app.host();
    return {
      stateDir,
      prefix,
      subnet,
      app,
      host,
      async lc(request, lcOptions = {}) {
        const image = request.image ?? 'busybox';
        const declares = request.role === 'active' && demoImages.includes(image);
        await createLc(app.db, host, {
          image,
          driver: 'namespace',
          systemDiskMb: 512,
          appDiskMb: 256,
          ...(declares ? { services: [demoService] } : {}),
          ...request,
        });
        if (lcOptions.start !== false) await startLc(app.db, host, request.name);
      },
      cli(args, cliOptions = {}) {
        return exec(
          [
            'node',
            '--import',
            'tsx',
            path.join(repoRoot, 'src/cli/entry.ts'),
            '--state-dir',
            stateDir,
            ...args,
          ],
          {
            cwd: repoRoot,
            okCodes: cliOptions.okCodes ?? [0],
            env: cliOptions.env,
            timeoutMs: 120_000,
          },
        );
      },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** A client "host" on the test bridge (src/demo's client host) with a curl helper. */
export interface TestClient extends ClientHost {
  /** GET a URL from inside the client namespace with curl; returns status, body and X-Served-By. */
  get(url: string): Promise<{ status: number; body: string; servedBy?: string }>;
}

export async function createClient(host: TestHost, hostOctet = 250): Promise<TestClient> {
  const client = await createClientHost({
    bridge: host.host.network.bridge,
    address: `${host.prefix}.${hostOctet}/24`,
  });
  return {
    ...client,
    async get(url) {
      const out = await client.run(['curl', '-s', '-D', '-', '--max-time', '5', url], {
        okCodes: [0, 7, 28, 52, 56],
      });
      const [head = '', ...rest] = out.stdout.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
      const servedBy = /^x-served-by: (.*)$/im.exec(head)?.[1]?.trim();
      return { status, body: rest.join('\r\n\r\n'), servedBy };
    },
  };
}

export { spawnProcess };

/**
 * The CLI as an operator runs it, against `stateDir`, with no test host: its exit code (0, 1, 2 or
 * 70) and output are the caller's to check.
 */
export function cliIn(stateDir: string, args: readonly string[], timeoutMs = 120_000): Promise<ExecResult> {
  return exec(
    [
      process.execPath,
      '--import',
      'tsx',
      path.join(repoRoot, 'src/cli/entry.ts'),
      '--state-dir',
      stateDir,
      ...args,
    ],
    { cwd: repoRoot, okCodes: [0, 1, 2, 70], timeoutMs },
  );
}
