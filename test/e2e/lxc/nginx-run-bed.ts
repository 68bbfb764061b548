/**
 * Two LXC LCs from the Debian bookworm image with unmodified nginx (cached by its inputs), lc1 serving
 * at .10 with nginx declared as its service and the administrator's change to the default site (every
 * answer names the LC in X-Served-By), lc2 idle at .11 (on the main pool, or on a standby pool of its
 * own), a client namespace, the catalogue. Used by the
 * nginx patch-run test and bench/lxc-nginx-patch.ts.
 */
import { createLc, startLc } from '../../../src/app/index.ts';
import { createCatalogue, patchesDirOf, type Catalogue } from '../../../src/catalogue/index.ts';
import { addPool, getPool } from '../../../src/host/index.ts';
import { buildImage } from '../../../src/images/index.ts';
import type { ServiceInput } from '../../../src/inventory/index.ts';
import { createClient, createTestHost, type TestClient, type TestHost } from '../../helpers/host-fixture.ts';
import { testCacheDir } from './debs.ts';
import { testImagePackages } from './lxc-fixture.ts';

/** nginx as the LC declares it: a systemd unit; drained by a graceful reload after the switch. */
export const nginxService: ServiceInput = {
  name: 'web',
  unit: 'nginx.service',
  ports: [80],
  health: { kind: 'http', path: '/', status: 200 },
  drain: { kind: 'reload' },
  hold: { kind: 'signal' },
  data: ['/srv/app'],
};
export const defaultSite = '/etc/nginx/sites-available/default';
/** The packages of Debian's nginx that move together. */
export const nginxSet = ['nginx', 'nginx-common'];

export interface NginxRunBed {
  t: TestHost;
  client: TestClient;
  catalogue: Catalogue;
  dispose(): Promise<void>;
}

export async function createNginxRunBed(
  options: {
    /**
     * LC2's disks on a pool of their own (the seed's DISK3/DISK4 on other media), so that the copy is a
     * real btrfs send/receive with a full pass, as in the demo; by default both LCs share the main
     * pool and the copy is a snapshot.
     */
    standbyPool?: boolean;
  } = {},
): Promise<NginxRunBed> {
  const t = await createTestHost({ images: [], poolSize: 4 * 1024 ** 3 });
  let client: TestClient | undefined;
  const dispose = async (): Promise<void> => {
    await client?.dispose().catch((e: unknown) => console.error(e));
    await t.dispose();
  };
  try {
    await buildImage({
      db: t.app.db,
      recipe: 'debian',
      name: 'debian-nginx',
      suite: 'bookworm',
      packages: testImagePackages,
      pool: getPool(t.app.db, 'main'),
      cacheDir: testCacheDir,
    });
    client = await createClient(t);
    const lc = (name: string, octet: number, cpus: string, extra: object) =>
      createLc(t.app.db, t.host, {
        name,
        image: 'debian-nginx',
        driver: 'lxc',
        cpus,
        memoryMb: 256,
        systemDiskMb: 1024,
        appDiskMb: 256,
        appMountPath: '/srv/app',
        addresses: [`${t.prefix}.${octet}`],
        ...extra,
      });
    const lc1 = await lc('lc1', 10, '0', { role: 'active', services: [nginxService] });
    if (options.standbyPool)
      await addPool({ db: t.app.db, stateDir: t.stateDir, name: 'standby', sizeBytes: 2 * 1024 ** 3 });
    await lc('lc2', 11, '1', options.standbyPool ? { pool: 'standby' } : {});
    // The administrator's change to a configuration file of nginx-common: every answer names the LC.
    const text = (await t.host.driver.readFile(lc1, defaultSite)).toString();
    await t.host.driver.writeFile(
      lc1,
      defaultSite,
      text.replace('server_name _;', 'server_name _;\n\tadd_header X-Served-By $hostname always;'),
    );
    await startLc(t.app.db, t.host, 'lc1', { timeoutMs: 60_000 });
    const catalogue = createCatalogue({ db: t.app.db, patchesDir: patchesDirOf(t.stateDir) });
    return { t, client, catalogue, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
