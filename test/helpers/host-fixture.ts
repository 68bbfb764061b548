/**
 * A throwaway understudy host for end-to-end tests: its own state dir, a loop-image pool, a bridge on a
 * random /24 inside 198.19.0.0/16 and the busybox image. `dispose()` removes all of it, even after a
 * failed test, and only what it made.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exec, spawnProcess, type ExecResult } from '../../src/core/index.ts';
import { destroyHost, getPool, initHost } from '../../src/host/index.ts';
import { buildImage } from '../../src/images/index.ts';
import { listLcs } from '../../src/inventory/index.ts';
import { createLc, destroyLc, hostContext, openManager, startLc, type HostContext, type Manager } from '../../src/manager/index.ts';
import type { LcRequest } from '../../src/inventory/index.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface TestHost {
  stateDir: string;
  /** First three octets of the test subnet, e.g. "198.19.42". */
  prefix: string;
  subnet: string;
  manager: Manager;
  host: HostContext;
  /** Creates and (by default) starts an LC from the busybox image. */
  lc(request: Partial<LcRequest> & { name: string }, options?: { start?: boolean }): Promise<void>;
  /** Runs the understudy CLI against this host in a child process. */
  cli(args: readonly string[], options?: { okCodes?: number[]; env?: Record<string, string> }): Promise<ExecResult>;
  dispose(): Promise<void>;
}

export async function createTestHost(options: { images?: string[]; poolSize?: number } = {}): Promise<TestHost> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-test-'));
  const third = crypto.randomInt(1, 254);
  const prefix = `198.19.${third}`;
  const subnet = `${prefix}.0/24`;
  const manager = openManager(stateDir);
  const dispose = async (): Promise<void> => {
    try {
      const host = await hostContext(manager).catch(() => undefined);
      if (host) for (const lc of listLcs(manager.db)) await destroyLc(manager, host, lc.name, { force: true }).catch((e: unknown) => console.error(e));
      await destroyHost(manager.db).catch((e: unknown) => console.error(e));
    } finally {
      manager.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  };
  try {
    await initHost({ db: manager.db, stateDir, subnet, poolSizeBytes: options.poolSize ?? 3 * 1024 ** 3 });
    for (const recipe of options.images ?? ['busybox']) {
      await buildImage({ db: manager.db, recipe, pool: getPool(manager.db, 'main'), cacheDir: process.env.UNDERSTUDY_TEST_CACHE ?? '/var/cache/understudy-test' });
    }
    const host = await hostContext(manager);
    return {
      stateDir,
      prefix,
      subnet,
      manager,
      host,
      async lc(request, lcOptions = {}) {
        await createLc(manager, host, { image: 'busybox', systemDiskMb: 512, appDiskMb: 256, ...request });
        if (lcOptions.start !== false) await startLc(manager, host, request.name);
      },
      cli(args, cliOptions = {}) {
        return exec(['node', '--import', 'tsx', path.join(repoRoot, 'src/cli/entry.ts'), '--state-dir', stateDir, ...args], {
          cwd: repoRoot,
          okCodes: cliOptions.okCodes ?? [0],
          env: cliOptions.env,
          timeoutMs: 120_000,
        });
      },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** A client "host" on the test bridge: a network namespace with one veth port and an address. */
export interface TestClient {
  netns: string;
  address: string;
  run(argv: readonly string[], options?: { okCodes?: number[]; timeoutMs?: number }): Promise<ExecResult>;
  /** GET a URL from inside the client namespace with curl; returns status, headers and body. */
  get(url: string): Promise<{ status: number; body: string; servedBy?: string }>;
  dispose(): Promise<void>;
}

export async function createClient(host: TestHost, hostOctet = 250): Promise<TestClient> {
  const id = crypto.randomBytes(3).toString('hex');
  const netns = `ustc-${id}`;
  const outside = `utc${id}`;
  const address = `${host.prefix}.${hostOctet}/24`;
  await exec(['ip', 'netns', 'add', netns]);
  try {
    await exec(['ip', 'link', 'add', outside, 'type', 'veth', 'peer', 'name', `utp${id}`]);
    await exec(['ip', 'link', 'set', `utp${id}`, 'netns', netns]);
    await exec(['ip', '-n', netns, 'link', 'set', `utp${id}`, 'name', 'eth0']);
    await exec(['ip', 'netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    await exec(['ip', '-n', netns, 'addr', 'add', address, 'dev', 'eth0']);
    await exec(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);
    await exec(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    await exec(['ip', 'link', 'set', outside, 'master', host.host.network.bridge, 'up']);
  } catch (error) {
    await exec(['ip', 'link', 'del', outside]).catch(() => undefined);
    await exec(['ip', 'netns', 'del', netns]).catch(() => undefined);
    throw error;
  }
  const run = (argv: readonly string[], o: { okCodes?: number[]; timeoutMs?: number } = {}): Promise<ExecResult> =>
    exec(['ip', 'netns', 'exec', netns, ...argv], { okCodes: o.okCodes, timeoutMs: o.timeoutMs ?? 30_000 });
  return {
    netns,
    address,
    run,
    async get(url) {
      const out = await run(['curl', '-s', '-D', '-', '--max-time', '5', url], { okCodes: [0, 7, 28, 52, 56] });
      const [head = '', ...rest] = out.stdout.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
      const servedBy = /^x-served-by: (.*)$/im.exec(head)?.[1]?.trim();
      return { status, body: rest.join('\r\n\r\n'), servedBy };
    },
    async dispose() {
      await exec(['ip', 'link', 'del', outside]).catch(() => undefined);
      await exec(['ip', 'netns', 'del', netns]).catch(() => undefined);
    },
  };
}

export { spawnProcess };
