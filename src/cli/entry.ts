// The process entry of the `understudy` command (bin/understudy runs this).
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
