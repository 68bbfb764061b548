/**
 * The namespace driver's file I/O into an LC's disks and its control outbox, on a real filesystem, with
 * what an LC's root can plant there: symlinks (also swapped while the manager works), FIFOs, huge files.
 * No LC runs: the driver's file I/O works on the disks whether the LC runs or not.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exec } from '../../../src/core/index.ts';
import { btrfsDiskPath } from '../../../src/disk-copy/index.ts';
import {
  NamespaceDriver,
  listDirInRoot,
  readFileInRoot,
  removeInRoot,
  writeFileInRoot,
  type LcSpec,
} from '../../../src/drivers/index.ts';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

describe('LC file I/O never leaves the LC (namespace driver, real filesystem)', () => {
  let dir: string;
  let driver: NamespaceDriver;
  let host: string;
  let systemDisk: string;
  let outbox: string;
  const spec: LcSpec = {
    name: 'lcx',
    image: 'busybox',
    cpus: '0',
    cpuSharePercent: 100,
    memoryMb: 64,
    disks: [
      { name: 'system', pool: 'main', sizeMb: 64, mountPath: '/' },
      { name: 'app', pool: 'main', sizeMb: 64, mountPath: '/srv/data' },
    ],
    nics: [],
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'us-lc-io-'));
    host = path.join(dir, 'host');
    fs.mkdirSync(host);
    driver = new NamespaceDriver({
      tag: 'io',
      runDir: path.join(dir, 'run'),
      poolPath: () => path.join(dir, 'pool'),
      imagePath: () => path.join(dir, 'image'),
      diskPath: (lc, disk) => btrfsDiskPath(path.join(dir, 'pool'), lc.name, disk),
    });
    systemDisk = driver.diskPath(spec, 'system');
    fs.mkdirSync(path.join(systemDisk, 'etc'), { recursive: true });
    fs.mkdirSync(driver.diskPath(spec, 'app'), { recursive: true });
    outbox = path.join(driver.controlDir(spec.name), 'outbox');
    fs.mkdirSync(outbox, { recursive: true });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('finding 3: a symlink planted at the temp path of a write does not overwrite a host file', async () => {
    const victim = path.join(host, 'passwd');
    fs.writeFileSync(victim, 'root:x:0:0\n');
    // What the LC's root can do before the manager writes /etc/target: guess the temp name (pid-based
    // today) and point it at a host path.
    fs.symlinkSync(victim, path.join(systemDisk, 'etc', `target.understudy-${process.pid}`));
    await driver.writeFile(spec, '/etc/target', 'from the manager\n');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'root:x:0:0\n', 'the host file is untouched');
    assert.equal(fs.readFileSync(path.join(systemDisk, 'etc/target'), 'utf8'), 'from the manager\n');
  });

  test('finding 3: symlinks (absolute, relative, ..) resolve inside the LC for reads and writes', async () => {
    fs.writeFileSync(path.join(host, 'secret'), 'host secret');
    fs.symlinkSync(path.join(host, 'secret'), path.join(systemDisk, 'etc/abs'));
    fs.symlinkSync(
      '../../../../../../../../..' + path.join(host, 'secret'),
      path.join(systemDisk, 'etc/rel'),
    );
    for (const link of ['/etc/abs', '/etc/rel', `/../../..${path.join(host, 'secret')}`]) {
      await assert.rejects(driver.readFile(spec, link), { code: 'ENOENT' }, link);
    }
    await driver.writeFile(spec, '/etc/abs', 'in the LC');
    assert.equal(fs.readFileSync(path.join(host, 'secret'), 'utf8'), 'host secret');
    assert.equal(fs.readFileSync(path.join(systemDisk, host, 'secret'), 'utf8'), 'in the LC');
    assert.equal((await driver.readFile(spec, '/etc/abs')).toString(), 'in the LC');
    // The app disk is mounted at /srv/data: a path there lands on that disk.
    await driver.writeFile(spec, '/srv/data/x', 'app');
    assert.equal(fs.readFileSync(path.join(driver.diskPath(spec, 'app'), 'x'), 'utf8'), 'app');
  });

  test('finding 3: a directory swapped for a host symlink while the manager writes never lets a write out', async () => {
    const target = path.join(host, 'swap-target');
    fs.mkdirSync(target);
    const lcDir = path.join(systemDisk, 'var');
    fs.mkdirSync(path.join(systemDisk, 'var.dir'));
    fs.symlinkSync(target, path.join(systemDisk, 'var.link'));
    // A child process swaps /var between a real directory and a symlink to the host as fast as it can,
    // atomically (renameat2 RENAME_EXCHANGE), so /var always exists and is one or the other.
    const swapper = [
      'import ctypes, os, sys, time',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[1] + ".link")',
      'end = time.time() + 4',
      'while time.time() < end:',
      '    libc.renameat2(-100, a, -100, b, 2)',
    ].join('\n');
    fs.renameSync(path.join(systemDisk, 'var.dir'), lcDir);
    const child = exec(['python3', '-c', swapper, lcDir], { timeoutMs: 20_000 });
    const end = Date.now() + 3500;
    let writes = 0;
    while (Date.now() < end) {
      try {
        await driver.writeFile(spec, '/var/f', 'x', 0o600);
        writes++;
      } catch (error) {
        // A write may fail when /var is missing at that instant; it must never land on the host.
        if ((error as NodeJS.ErrnoException).code === undefined) throw error;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await child;
    assert.ok(writes > 0, 'some writes went through');
    assert.deepEqual(fs.readdirSync(target), [], 'nothing was written through the host symlink');
  });

  test('finding 6: a symlink in the outbox does not leak a host file into a report', async () => {
    fs.writeFileSync(path.join(host, 'shadow'), '{"secret":"host"}');
    fs.symlinkSync(path.join(host, 'shadow'), path.join(outbox, '100-1-leak.json'));
    const reports = await driver.readReports(spec.name);
    assert.equal(
      reports.find((r) => JSON.stringify(r.body).includes('host')),
      undefined,
      'no report carries the host file',
    );
    assert.ok(fs.existsSync(path.join(host, 'shadow')), 'the host file is still there');
  });

  test('finding 6: the outbox replaced by a symlink to a host directory is not read', async () => {
    const control = driver.controlDir(spec.name);
    const hostDir = path.join(host, 'reports');
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, '200-1-patch-report.json'), '{"from":"host"}');
    fs.renameSync(outbox, `${outbox}.old`);
    fs.symlinkSync(hostDir, outbox);
    try {
      const reports = await driver.readReports(spec.name);
      assert.deepEqual(reports, []);
      await driver.acknowledgeReport(spec.name, '200-1-patch-report.json');
      assert.ok(
        fs.existsSync(path.join(hostDir, '200-1-patch-report.json')),
        'acknowledging removed nothing on the host',
      );
    } finally {
      fs.rmSync(outbox);
      fs.renameSync(`${outbox}.old`, outbox);
    }
    assert.ok(fs.existsSync(control));
  });

  test('finding 6: a FIFO in the outbox neither blocks the manager nor hides the other reports', async () => {
    await exec(['mkfifo', path.join(outbox, '300-1-fifo.json')]);
    fs.writeFileSync(path.join(outbox, '301-1-patch-report.json'), '{"ok":true}');
    // Reading a FIFO with no writer blocks the reading thread for good, so it runs in a child process
    // that must be done within the time bound.
    const script = `
      import { NamespaceDriver } from ${JSON.stringify(path.join(repoRoot, 'src/drivers/index.ts'))};
      const driver = new NamespaceDriver({ tag: 'io', runDir: ${JSON.stringify(path.join(dir, 'run'))},
        poolPath: () => '', imagePath: () => '' });
      const reports = await driver.readReports(${JSON.stringify(spec.name)});
      console.log(JSON.stringify(reports.map((r) => r.id)));`;
    const result = await exec(['node', '--import', 'tsx', '--input-type=module', '-e', script], {
      timeoutMs: 15_000,
      cwd: repoRoot,
    });
    const ids = JSON.parse(result.stdout) as string[];
    assert.ok(ids.includes('301-1-patch-report.json'), 'the regular report is read');
    assert.ok(!ids.includes('300-1-fifo.json'), 'the FIFO is no report');
  });

  test('finding 6: a huge file in the outbox is refused without being read', async () => {
    const huge = path.join(outbox, '400-1-huge.json');
    const fd = fs.openSync(huge, 'w');
    fs.ftruncateSync(fd, 512 * 1024 * 1024); // sparse: costs no disk, but 512 MiB to read
    fs.closeSync(fd);
    const before = process.memoryUsage().rss;
    const reports = await driver.readReports(spec.name);
    assert.equal(
      reports.find((r) => r.id === '400-1-huge.json'),
      undefined,
    );
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'the file was not read into memory');
  });
});

describe('rootfs-io (driver-agnostic in-root file I/O)', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'us-rootfs-io-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('finding 3: a device node planted in the tree is never opened for reading', async () => {
    // /dev/zero's numbers (1:5): reading it would never end.
    await exec(['mknod', path.join(root, 'zero'), 'c', '1', '5']);
    assert.throws(() => readFileInRoot(root, '/zero'), { code: 'LC_FILE_UNSAFE' });
  });

  test('finding 3: a symlink loop and a path through a file are refused, ".." stops at the root', () => {
    fs.symlinkSync('loop-b', path.join(root, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(root, 'loop-b'));
    assert.throws(() => readFileInRoot(root, '/loop-a'), { code: 'PATH_OUTSIDE_ROOT' });
    fs.writeFileSync(path.join(root, 'file'), 'f');
    assert.throws(() => writeFileInRoot(root, '/file/x', 'x'), { code: 'LC_FILE_UNSAFE' });
    writeFileInRoot(root, '/../../../../top', 'top', { mode: 0o600 });
    assert.equal(fs.readFileSync(path.join(root, 'top'), 'utf8'), 'top');
    assert.equal(fs.statSync(path.join(root, 'top')).mode & 0o777, 0o600);
    assert.deepEqual(listDirInRoot(root, '/../..').sort(), ['file', 'loop-a', 'loop-b', 'top', 'zero']);
    removeInRoot(root, '/loop-a');
    assert.ok(
      fs.lstatSync(path.join(root, 'loop-b')).isSymbolicLink(),
      'removing a symlink removes the link, not its target',
    );
    assert.throws(() => readFileInRoot(root, 'relative'), { code: 'PATH_OUTSIDE_ROOT' });
  });
});
