/**
 * Runs the load generator in whatever network namespace it is started in (`ip netns exec <client>`):
 * argv[2] is the LoadOptions as JSON; prints the LoadResult as JSON on stdout.
 */
import { startLoad, type LoadOptions } from '../../../src/loadgen/index.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
const result = await startLoad(options).done;
process.stdout.write(JSON.stringify(result));
