/** Crash safety, part 3: the manager killed in the middle of the switch, after it, and during the watch. */
import { crashSuite } from './crash-suite.ts';

crashSuite('the manager is killed during the switch and the watch', [
  'switch/lc2-takes-address:after',
  'switch/drain:after',
  'switch:after',
  { point: 'watch:during', args: ['--watch', '5'] },
]);
