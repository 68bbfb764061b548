/**
 * One manager process of the start race (start-race.test.ts): opens the store, waits for the agreed
 * instant, starts a run of argv[3] and prints one JSON line: `{"won":true}` when its run got to the first
 * step (the process then ends there, like a crash), or `{"code","message"}` when the start was refused.
 */
import path from 'node:path';
import { allSchemas } from '../../../src/app/index.ts';
import { createCatalogue } from '../../../src/catalogue/index.ts';
import { isUnderstudyError } from '../../../src/core/index.ts';
import { startRun } from '../../../src/run/index.ts';
import { openStore } from '../../../src/store/index.ts';
import { createMemoryHost } from '../../helpers/memory-host.ts';

const [dbFile = '', lc = '', goAt = '0'] = process.argv.slice(2);
const db = openStore(dbFile, allSchemas);
const catalogue = createCatalogue({ db, patchesDir: path.join(path.dirname(dbFile), 'patches') });
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(goAt) - Date.now())));
try {
  await startRun(
    { lc, skipScan: true },
    {
      db,
      host: createMemoryHost().host,
      catalogue,
      crashPoint: (point, when) => {
        if (point !== 'find-standby' || when !== 'before') return;
        console.log(JSON.stringify({ won: true }));
        process.exit(0);
      },
    },
  );
  console.log(JSON.stringify({ code: 'NOT_STOPPED', message: 'the run went past its first step' }));
} catch (error) {
  if (!isUnderstudyError(error)) throw error;
  console.log(JSON.stringify({ code: error.code, message: error.message }));
}
