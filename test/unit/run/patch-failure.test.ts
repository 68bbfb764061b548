import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summarizePatchFailure } from '../../../src/run/index.ts';

// Tails of apt-get's output on a standby, as the patch script logs them.
const generic = [
  'Errors were encountered while processing:',
  ' /var/lib/understudy/debs/nginx-common.deb',
  'E: Sub-process /usr/bin/dpkg returned an error code (1)',
];

test('a file another package owns: the overwrite is named, not the generic end of the log', () => {
  const output = [
    'Preparing to unpack .../debs/nginx-common.deb ...',
    'Unpacking nginx-common (1.22.1-9+deb12u9+us1) over (1.22.1-9+deb12u9) ...',
    'dpkg: error processing archive /var/lib/understudy/debs/nginx-common.deb (--unpack):',
    " trying to overwrite '/etc/debian_version', which is also in package base-files 12.4+deb12u5",
    ...generic,
  ].join('\n');
  assert.equal(
    summarizePatchFailure(output),
    "dpkg: error processing archive /var/lib/understudy/debs/nginx-common.deb (--unpack): / trying to overwrite '/etc/debian_version', which is also in package base-files 12.4+deb12u5",
  );
});

test('a failing maintainer script: its exit status is named', () => {
  const output = [
    'Setting up us-fault-postinst (1.0) ...',
    'postinst of us-fault-postinst fails on purpose',
    'dpkg: error processing package us-fault-postinst (--configure):',
    ' installed us-fault-postinst package post-installation script subprocess returned error exit status 1',
    'Errors were encountered while processing:',
    ' us-fault-postinst',
    'E: Sub-process /usr/bin/dpkg returned an error code (1)',
  ].join('\n');
  assert.match(
    summarizePatchFailure(output),
    /post-installation script subprocess returned error exit status 1/,
  );
});

test('a dependency nothing satisfies: the package and the dependency are named', () => {
  const output = [
    'Some packages could not be installed. This may mean that you have',
    'The following packages have unmet dependencies:',
    ' us-fault-dep : Depends: understudy-no-such-package (>= 1) but it is not installable',
    'E: Unable to correct problems, you have held broken packages.',
  ].join('\n');
  assert.equal(
    summarizePatchFailure(output),
    'us-fault-dep : Depends: understudy-no-such-package (>= 1) but it is not installable',
  );
});

test('output naming no known cause: its last three lines', () => {
  assert.equal(summarizePatchFailure('a\nb\n\nc\nd\n'), 'b / c / d');
  assert.equal(summarizePatchFailure(''), '');
});
