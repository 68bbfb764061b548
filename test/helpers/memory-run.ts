/**
 * A patch-run fixture on the in-memory host: a store in a temporary directory with every module's
 * schema, LC1 (active, serving 198.18.0.10 with a system and an application disk) and an idle
 * standby LC2, the catalogue, and the run's dependencies bound to the in-memory driver and disk store.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allSchemas, createLc } from '../../src/app/index.ts';
import { createCatalogue, sha256File, type Catalogue } from '../../src/catalogue/index.ts';
import { silentLogger } from '../../src/core/index.ts';
import { demoService } from '../../src/demo/index.ts';
import type { LcRequest } from '../../src/inventory/index.ts';
import type { RunDeps, RunEvent } from '../../src/run/index.ts';
import { openStore, type Db } from '../../src/store/index.ts';
import { createMemoryHost, type MemoryHost } from './memory-host.ts';

export interface MemoryRun {
  dir: string;
  db: Db;
  mem: MemoryHost;
  catalogue: Catalogue;
  events: RunEvent[];
  deps: RunDeps;
  /** Registers a patch that sets the service's version to `version` and marks it for LC1's next run. */
  addVersionPatch(version: string, lc?: string): Promise<string>;
  /** What the service at the service address answers, from the host's point of view. */
  served(): { by: string[]; version: string | undefined };
  /** Reads a file of an LC's application disk (mounted at /srv). */
  data(lc: string, file: string): string | undefined;
  writeData(lc: string, file: string, value: string): void;
  close(): void;
}

export const serviceAddress = '198.18.0.10/24';

/** LC1 and LC2 as the fixture makes them, with these changes (e.g. extra disks). */
export interface MemoryRunOptions {
  lc1?: Partial<LcRequest>;
  lc2?: Partial<LcRequest>;
}

export async function createMemoryRun(options: MemoryRunOptions = {}): Promise<MemoryRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-memory-run-'));
  const db = openStore(path.join(dir, 'understudy.db'), allSchemas);
  const now = new Date().toISOString();
  db.prepare(
    'INSERT INTO pools (name, device, image_path, mountpoint, size_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run('main', '/dev/memory-main', null, '/memory/main', 1024 ** 3, now);
  db.prepare(
    'INSERT INTO images (name, recipe, pool, path, size_bytes, build_ms, built_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  ).run('busybox', 'busybox', 'main', '/memory/images/busybox', 0, 0, now);
  const mem = createMemoryHost();
  const lc = (request: Partial<LcRequest> & { name: string }): Promise<unknown> =>
    createLc(db, mem.host, {
      image: 'busybox',
      cpus: '0',
      memoryMb: 64,
      systemDiskMb: 64,
      appDiskMb: 32,
      ...request,
    });
  await lc({
    name: 'lc1',
    addresses: [serviceAddress],
    role: 'active',
    services: [demoService],
    ...options.lc1,
  });
  await lc({ name: 'lc2', addresses: ['198.18.0.11/24'], ...options.lc2 });
  await mem.driver.start(mem.driver.lcs.get('lc1')!.spec);
  const catalogue = createCatalogue({ db, patchesDir: path.join(dir, 'patches') });
  const events: RunEvent[] = [];
  const spec = (name: string) => mem.driver.lcs.get(name)!.spec;
  return {
    dir,
    db,
    mem,
    catalogue,
    events,
    deps: { db, host: mem.host, catalogue, logger: silentLogger, onEvent: (e) => events.push(e) },
    async addVersionPatch(version, lcName = 'lc1') {
      const name = `demo-${version}`;
      const file = path.join(dir, `${name}.src`);
      fs.writeFileSync(file, `version ${version}\n`);
      await catalogue.registerPatch({
        file,
        name,
        categories: ['security'],
        format: 'script',
        sha256: (await sha256File(file)).sha256,
      });
      catalogue.markNextRun(name, lcName, true);
      return name;
    },
    served() {
      const by = mem.driver.holders(serviceAddress);
      const holder = by[0] ? mem.driver.lcs.get(by[0]) : undefined;
      const version =
        holder?.state === 'running'
          ? mem.files.read(holder.spec, '/etc/demo-version')?.toString()
          : undefined;
      return { by, version };
    },
    data: (name, file) => mem.files.read(spec(name), `/srv/${file}`)?.toString(),
    writeData: (name, file, value) => mem.files.write(spec(name), `/srv/${file}`, value),
    close() {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
