/** Validation of LC requests against the host: every refusal names the field and what is allowed. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import {
  inventorySchema,
  insertLc,
  validateLcRequest,
  type LcRequest,
} from '../../../src/inventory/index.ts';
import { hostSchema, parseSubnet, subnetContains } from '../../../src/host/index.ts';
import { parseHostConfig } from '../../../src/config/index.ts';
import { UnderstudyError } from '../../../src/core/index.ts';

const network = { tag: 'ab12', bridge: 'usab12br', subnet: '198.18.0.0/24', hostAddress: '198.18.0.1/24' };
const pools = [{ name: 'main', device: null, imagePath: '/x', mountpoint: '/x', sizeBytes: 4 * 1024 ** 3 }];

function setup(): (request: Partial<LcRequest>) => ReturnType<typeof validateLcRequest> {
  const db = openStore(':memory:', [hostSchema, inventorySchema]);
  const validate = (request: Partial<LcRequest>): ReturnType<typeof validateLcRequest> =>
    validateLcRequest({
      db,
      request: { name: 'lc1', image: 'busybox', ...request },
      network,
      pools,
      capacity: { cpuCount: 2, memoryMb: 1024 },
      imageExists: (i) => i === 'busybox',
    });
  insertLc(db, validate({ name: 'web', addresses: ['198.18.0.10'], memoryMb: 512 }));
  return validate;
}

function refused(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UnderstudyError);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    assert.ok(error.hint.length > 0);
    return true;
  });
}

describe('LC request validation', () => {
  test('a complete record with defaults', () => {
    const record = setup()({ addresses: ['198.18.0.11'] });
    assert.equal(record.cpus, '0');
    assert.equal(record.cpuSharePercent, 100);
    assert.deepEqual(
      record.disks.map((d) => [d.name, d.mountPath]),
      [
        ['system', '/'],
        ['app', '/srv'],
      ],
    );
    assert.deepEqual(record.nics[0]?.addresses, ['198.18.0.11/24']);
    assert.match(record.nics[0]?.mac ?? '', /^02:75:73(:[0-9a-f]{2}){3}$/);
    assert.equal(record.driver, 'lxc', 'LXC is the default driver');
    assert.equal(setup()({ driver: 'namespace' }).driver, 'namespace', 'namespace only by name');
  });
  test('bad input is refused with the field named', () => {
    const validate = setup();
    refused(() => validate({ name: 'web' }), 'LC_EXISTS', /"web" already exists/);
    refused(() => validate({ name: 'Bad_Name' }), 'LC_NAME_INVALID', /Bad_Name/);
    refused(() => validate({ image: 'nope' }), 'IMAGE_NOT_FOUND', /"nope"/);
    refused(
      () => validate({ cpus: '3' }),
      'RESOURCES_EXCEEDED',
      /CPU 3 does not exist; the host has CPUs 0-1/,
    );
    refused(
      () => validate({ cpuSharePercent: 150 }),
      'RESOURCES_EXCEEDED',
      /150% is not between 1% and 100%/,
    );
    refused(() => validate({ memoryMb: 600 }), 'RESOURCES_EXCEEDED', /600 MB asked, but only 512 MB/);
    refused(() => validate({ systemDiskMb: 4000 }), 'RESOURCES_EXCEEDED', /pool "main"/);
    refused(
      () => validate({ addresses: ['10.0.0.5'] }),
      'ADDRESS_INVALID',
      /outside the bridge subnet 198.18.0.0\/24/,
    );
    refused(() => validate({ addresses: ['198.18.0.10'] }), 'ADDRESS_INVALID', /already used by LC web/);
    refused(() => validate({ addresses: ['198.18.0.1'] }), 'ADDRESS_INVALID', /already used by the host/);
    refused(() => validate({ addresses: ['198.18.0.300'] }), 'ADDRESS_INVALID', /not an IPv4 address/);
    refused(
      () => validate({ addresses: ['198.18.0.12'], mac: '01:00:00:00:00:01' }),
      'INVALID_ARGUMENT',
      /not a unicast MAC/,
    );
    refused(() => validate({ appMountPath: '/srv/../etc' }), 'INVALID_ARGUMENT', /mount path/);
  });
  test('subnet arithmetic', () => {
    const s = parseSubnet('198.18.5.77/24');
    assert.equal(s.cidr, '198.18.5.0/24');
    assert.ok(subnetContains(s, '198.18.5.1'));
    assert.ok(!subnetContains(s, '198.18.5.255'), 'broadcast is not a host address');
    assert.ok(!subnetContains(s, '198.18.6.1'));
  });
});

describe('host config file', () => {
  test('defaults fill a minimal file', () => {
    const config = parseHostConfig('lcs:\n  - name: lc1\n    addresses: [198.18.0.10]\n', 'x.yaml');
    assert.equal(config.host.subnet, '198.18.0.0/24');
    assert.equal(config.lcs[0]?.memory, 128);
    assert.equal(config.lcs[0]?.driver, 'lxc', 'LXC is the default driver of the YAML');
  });
  test('errors name the field by its path in the file', () => {
    refused(
      () => parseHostConfig('lcs:\n  - name: lc1\n  - name: lc2\n    memory: lots\n', 'x.yaml'),
      'CONFIG_INVALID',
      /lcs\[1\]\.memory/,
    );
    refused(
      () => parseHostConfig('host:\n  subnett: 1\n', 'x.yaml'),
      'CONFIG_INVALID',
      /host: Unrecognized key.*subnett/,
    );
    refused(() => parseHostConfig('lcs: [\n', 'bad.yaml'), 'CONFIG_INVALID', /bad.yaml: not valid YAML/);
  });
});
