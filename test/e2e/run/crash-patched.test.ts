/** Crash safety, part 2: the manager killed once the standby is patched, before the switch and after it. */
import { crashSuite } from './crash-suite.ts';

crashSuite('the manager is killed once the standby is patched', [
  'boot-standby:after',
  'reboot-standby:after',
  'check-standby:after',
  'record-applied:before',
  'record-applied:during',
]);
