/**
 * Runs the load generator in whatever network namespace it is started in (`ip netns exec <client>`):
 * argv[2] is the LoadOptions as JSON; SIGTERM stops scheduling early; prints the LoadResult as JSON.
 */
import { startLoad, type LoadOptions } from '../../../src/loadgen/index.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
const handle = startLoad(options);
process.on('SIGTERM', () => void handle.stop());
const result = await handle.done;
process.stdout.write(JSON.stringify(result));
