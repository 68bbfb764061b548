/**
 * Benchmark: create + boot time of an LC (until its start-up scripts have run and the demo service
 * answers), from the busybox and the debian image; memory of an idle LC with and without the demo
 * service. Run as root: `npm run bench:lc` (options: --runs N, --debian-runs N, --no-debian).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exec } from '../src/core/index.ts';
import { getLc } from '../src/inventory/index.ts';
import { buildImage } from '../src/images/index.ts';
import { getPool } from '../src/host/index.ts';
import { createLc, destroyLc, startLc } from '../src/app/index.ts';
import { createTestHost, enableTestDrivers } from '../test/helpers/host-fixture.ts';

// The namespace driver (retired for operators) is the project's own fast test driver; this benchmark measures it.
enableTestDrivers();

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    'debian-runs': { type: 'string', default: '5' },
    'no-debian': { type: 'boolean', default: false },
  },
});

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const t = await createTestHost({ poolSize: 6 * 1024 ** 3 });
const rows: string[][] = [];
try {
  const images = ['busybox'];
  if (!values['no-debian']) {
    const started = performance.now();
    await buildImage({
      db: t.app.db,
      recipe: 'debian',
      pool: getPool(t.app.db, 'main'),
      cacheDir: '/var/cache/understudy-test',
    });
    console.error(`debian image ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    images.push('debian');
  }
  for (const image of images) {
    const runs = Number(image === 'busybox' ? values.runs : values['debian-runs']);
    const create: number[] = [];
    const boot: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < runs; i++) {
      const name = `b${i}`;
      const t0 = performance.now();
      await createLc(t.app.db, t.host, {
        name,
        image,
        driver: 'namespace',
        systemDiskMb: 256,
        appDiskMb: 64,
        addresses: [`${t.prefix}.${20 + i}`],
      });
      const t1 = performance.now();
      await startLc(t.app.db, t.host, name);
      // "Up" = the demo service answers over the bridge.
      await exec([
        'curl',
        '-sf',
        '--max-time',
        '5',
        '--retry',
        '50',
        '--retry-delay',
        '0',
        '--retry-connrefused',
        `http://${t.prefix}.${20 + i}/health`,
      ]);
      const t2 = performance.now();
      create.push(t1 - t0);
      boot.push(t2 - t1);
      total.push(t2 - t0);
      await destroyLc(t.app.db, t.host, name, { force: true });
    }
    rows.push([
      image,
      String(runs),
      median(create).toFixed(0),
      median(boot).toFixed(0),
      median(total).toFixed(0),
      Math.max(...total).toFixed(0),
    ]);
  }

  // Memory of an idle LC: with the demo service, and with only its init (demo start-up script disabled).
  const memory: string[][] = [];
  for (const withDemo of [true, false]) {
    const name = withDemo ? 'mdemo' : 'minit';
    await createLc(t.app.db, t.host, {
      name,
      image: 'busybox',
      driver: 'namespace',
      systemDiskMb: 256,
      appDiskMb: 64,
      addresses: [],
    });
    if (!withDemo)
      fs.chmodSync(
        path.join(t.host.disks.mountpoint({ lc: getLc(t.app.db, name), disk: 'system' }), 'etc/rc.d/S50demo'),
        0o644,
      );
    await startLc(t.app.db, t.host, name);
    await new Promise((r) => setTimeout(r, 2000));
    const usage = await t.host.driver.usage(name);
    const rss = (
      await t.host.driver.exec(name, ['sh', '-c', 'cat /proc/[0-9]*/status 2>/dev/null | grep VmRSS'])
    ).stdout
      .split('\n')
      .reduce((sum, line) => sum + Number(/(\d+) kB/.exec(line)?.[1] ?? 0), 0);
    memory.push([
      withDemo ? 'init + demo service (node)' : 'init only',
      (usage.memoryBytes / 1024 ** 2).toFixed(1),
      (rss / 1024).toFixed(1),
      String(usage.pids),
    ]);
    await destroyLc(t.app.db, t.host, name, { force: true });
  }

  const fmt = (header: string[], body: string[][]): string =>
    [
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      ...body.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
  console.log('\nCreate + boot of an LC (ms; boot ends when the demo service answers over the bridge)\n');
  console.log(
    fmt(
      ['image', 'runs', 'create (median)', 'boot (median)', 'create + boot (median)', 'create + boot (max)'],
      rows,
    ),
  );
  console.log('\nMemory of an idle LC (cgroup memory usage incl. page cache; RSS of its processes)\n');
  console.log(fmt(['LC content', 'cgroup MiB', 'RSS MiB', 'processes'], memory));
} finally {
  await t.dispose();
}
