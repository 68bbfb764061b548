/** A host with LC1 serving, an idle standby LC2, a client and the demo patch, for patch-run tests. */
import fs from 'node:fs';
import path from 'node:path';
import {
  createCatalogue,
  patchesDirOf,
  sha256File,
  type Catalogue,
  type PatchFormat,
} from '../../../src/catalogue/index.ts';
import {
  createClientHost,
  makeVersionPatch,
  startClientLoad,
  type ClientHost,
  type ClientLoad,
} from '../../../src/demo/index.ts';
import type { RunDeps } from '../../../src/run/index.ts';
import { addPool } from '../../../src/host/index.ts';
import { createTestHost, type TestHost } from '../../helpers/host-fixture.ts';

export interface RunFixture {
  t: TestHost;
  client: ClientHost;
  catalogue: Catalogue;
  service: string;
  deps: RunDeps;
  /** Registers a patch file and marks it for lc1's next run. */
  addPatch(name: string, format: PatchFormat, content: string | Buffer, lc?: string): Promise<void>;
  /** The version patch 1.0.0 → 1.0.1 (or from → to), marked for the next run of `lc`. */
  addVersionPatch(from?: string, to?: string, lc?: string): Promise<string>;
  load(rate?: number): Promise<ClientLoad>;
  get(
    pathname: string,
    host?: string,
  ): Promise<{ status: number; body: string; servedBy: string | null; version: string | null }>;
  put(pathname: string, body: string): Promise<number>;
  dispose(): Promise<void>;
}

export async function createRunFixture(
  options: {
    /** Passed to createTestHost (e.g. a state dir on a small filesystem, a device for the main pool). */
    host?: Parameters<typeof createTestHost>[0];
    /** The standby pool: its size (default 2 GiB) or a block device for it. */
    standbyPool?: { sizeBytes?: number; device?: string };
  } = {},
): Promise<RunFixture> {
  const t = await createTestHost(options.host);
  let client: ClientHost | undefined;
  try {
    const service = `${t.prefix}.10`;
    await t.lc({ name: 'lc1', addresses: [service], role: 'active', cpus: '0' });
    // The standby's disks are on another pool (the seed's DISK3/DISK4 on other media): a real send/receive copy.
    await addPool({
      db: t.app.db,
      stateDir: t.stateDir,
      name: 'standby',
      sizeBytes: options.standbyPool?.sizeBytes ?? 2 * 1024 ** 3,
      device: options.standbyPool?.device,
    });
    await t.lc({ name: 'lc2', addresses: [`${t.prefix}.11`], cpus: '1', pool: 'standby' }, { start: false });
    client = await createClientHost({ bridge: t.host.network.bridge, address: `${t.prefix}.200/24` });
    const catalogue = createCatalogue({ db: t.app.db, patchesDir: patchesDirOf(t.stateDir) });
    const events: string[] = [];
    const fixture: RunFixture = {
      t,
      client,
      catalogue,
      service,
      deps: {
        db: t.app.db,
        host: t.host,
        catalogue,
        onEvent: (e) => events.push(`${e.step}:${e.state}`),
      },
      async addPatch(name, format, content, lc = 'lc1') {
        const file = path.join(t.stateDir, `${name}.src`);
        fs.writeFileSync(file, content, { mode: 0o755 });
        await catalogue.registerPatch({
          file,
          name,
          categories: ['security'],
          format,
          sha256: (await sha256File(file)).sha256,
        });
        catalogue.markNextRun(name, lc, true);
      },
      async addVersionPatch(from = '1.0.0', to = '1.0.1', lc = 'lc1') {
        const name = `demo-${to}`;
        const file = await makeVersionPatch({ dir: t.stateDir, from, to, name });
        await catalogue.registerPatch({
          file,
          name,
          categories: ['security'],
          format: 'diff',
          sha256: (await sha256File(file)).sha256,
        });
        catalogue.markNextRun(name, lc, true);
        return name;
      },
      load: (rate = 300) =>
        startClientLoad({
          netns: (client as ClientHost).netns,
          url: `http://${service}/`,
          rate,
          maxDurationS: 300,
        }),
      async get(pathname, hostAddress = service) {
        const response = await fetch(`http://${hostAddress}${pathname}`, {
          signal: AbortSignal.timeout(5000),
        });
        return {
          status: response.status,
          body: await response.text(),
          servedBy: response.headers.get('x-served-by'),
          version: response.headers.get('x-version'),
        };
      },
      async put(pathname, body) {
        return (
          await fetch(`http://${service}${pathname}`, {
            method: 'PUT',
            body,
            signal: AbortSignal.timeout(5000),
          })
        ).status;
      },
      async dispose() {
        await client?.dispose();
        await t.dispose();
      },
    };
    return fixture;
  } catch (error) {
    await client?.dispose();
    await t.dispose();
    throw error;
  }
}
