/**
 * An LXC test bed: a throwaway understudy host (state dir, pool, bridge on a random /24 of 198.19.0.0/16),
 * a real Debian bookworm image with systemd and unmodified nginx (debootstrapped once, then cached under
 * UNDERSTUDY_TEST_CACHE by its inputs), the LXC driver, and a client namespace on the bridge.
 */
import path from 'node:path';
import { LxcDriver, type LcSpec } from '../../../src/drivers/index.ts';
import { getPool } from '../../../src/host/index.ts';
import { buildImage, findImage } from '../../../src/images/index.ts';
import { createClient, createTestHost, type TestClient, type TestHost } from '../../helpers/host-fixture.ts';

export const testImagePackages = ['nginx', 'kmod', 'curl'];

export interface LxcBed {
  t: TestHost;
  driver: LxcDriver;
  client: TestClient;
  /** The spec of a test LC: 1 CPU at 50 %, 256 MB, a system and an app disk, one NIC at .<octet>. */
  spec(name: string, octet: number): LcSpec;
  dispose(): Promise<void>;
}

export async function createLxcBed(): Promise<LxcBed> {
  const t = await createTestHost({ images: [] });
  const specs: LcSpec[] = [];
  let client: TestClient | undefined;
  const driver = new LxcDriver({
    tag: t.host.network.tag,
    lxcPath: path.join(t.stateDir, 'lxc'),
    poolPath: (pool) => getPool(t.app.db, pool).mountpoint,
    imagePath: (image) => findImage(t.app.db, image)?.path ?? '/nonexistent',
  });
  const dispose = async (): Promise<void> => {
    for (const spec of specs) {
      await driver.stop(spec.name, { timeoutMs: 5000 }).catch((e: unknown) => console.error(e));
      await driver.destroy(spec).catch((e: unknown) => console.error(e));
    }
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
      cacheDir: process.env.UNDERSTUDY_TEST_CACHE ?? '/var/cache/understudy-test',
    });
    client = await createClient(t);
    return {
      t,
      driver,
      client,
      spec(name, octet) {
        const spec: LcSpec = {
          name,
          image: 'debian-nginx',
          cpus: '0',
          cpuSharePercent: 50,
          memoryMb: 256,
          disks: [
            { name: 'system', pool: 'main', sizeMb: 1024, mountPath: '/' },
            { name: 'app', pool: 'main', sizeMb: 256, mountPath: '/srv/app' },
          ],
          nics: [
            {
              name: 'eth0',
              bridge: t.host.network.bridge,
              mac: `02:75:73:ee:${octet.toString(16).padStart(2, '0')}:01`,
              addresses: [`${t.prefix}.${octet}/24`],
            },
          ],
        };
        specs.push(spec);
        return spec;
      },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
