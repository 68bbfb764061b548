/**
 * Runs after every other test: nothing the tests created may be left on the host — no namespace,
 * mount, loop device, veth, cgroup or process of theirs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { exec } from '../../src/core/index.ts';

test('the test suite left no namespace, mount, loop device, veth, cgroup or process behind', async () => {
  const netns = (await exec(['ip', 'netns', 'list'])).stdout
    .split('\n')
    .filter((l) => /^(us[0-9a-f]{4}-|ustc-)/.test(l));
  assert.deepEqual(netns, [], 'network namespaces');
  const mounts = fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes('understudy-test'));
  assert.deepEqual(mounts, [], 'mounts');
  const loops = (await exec(['losetup', '--list', '--noheadings', '--output', 'BACK-FILE'])).stdout
    .split('\n')
    .filter((l) => l.includes('understudy-test'));
  assert.deepEqual(loops, [], 'loop devices');
  const links = fs
    .readdirSync('/sys/class/net')
    .filter((n) => /^(u[0-9a-f]{10}|us[0-9a-f]{4}br|utc[0-9a-f]{6})$/.test(n));
  assert.deepEqual(links, [], 'veths and bridges');
  const cgroupRoot = fs.existsSync('/sys/fs/cgroup/memory') ? '/sys/fs/cgroup/memory' : '/sys/fs/cgroup';
  // Namespace-driver cgroups, and the LXC driver's (LXC names them after the container, us<tag>-<lc>).
  const cgroups = fs
    .readdirSync(cgroupRoot)
    .filter((n) => n.startsWith('understudy-') || /^lxc\.(payload|monitor)\.us[0-9a-f]{4}-/.test(n));
  assert.deepEqual(cgroups, [], 'cgroups');
  const supervisors = fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmdline.includes('lc-supervise.sh') || cmdline.includes('lxc-supervise.sh');
      } catch {
        return false;
      }
    });
  assert.deepEqual(supervisors, [], 'LC supervisor processes');
  // idmap ranges leased to LXC LCs of test state dirs.
  const leaseDir = '/var/lib/understudy-idmap';
  const leases = (fs.existsSync(leaseDir) ? fs.readdirSync(leaseDir) : []).filter((f) =>
    fs.readFileSync(`${leaseDir}/${f}`, 'utf8').includes('understudy-test'),
  );
  assert.deepEqual(leases, [], 'idmap leases');
});
