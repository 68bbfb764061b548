/** Crash safety, part 1: the manager killed before the standby boots (the standby search, the scan, the copy). */
import { crashSuite } from './crash-suite.ts';

crashSuite('the manager is killed before the standby boots', [
  'find-standby:after',
  'scan:after',
  'stop-standby:after',
  'copy-system:during',
  'copy-system:after',
  'copy-app:after',
  'write-patches:after',
]);
