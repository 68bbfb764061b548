/** The demo's security patch: a unified diff that moves the demo service from one version to the next. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnderstudyError, exec } from '../core/index.ts';
import { assetsDir } from '../images/index.ts';

/** Writes `<dir>/<name>.diff` (paths a/opt/demo/server.mjs → b/…, for `patch -p1` at /) and returns its path. */
export async function makeVersionPatch(options: {
  dir: string;
  from: string;
  to: string;
  name: string;
}): Promise<string> {
  const original = fs.readFileSync(path.join(assetsDir, 'demo-service/server.mjs'), 'utf8');
  const line = `const VERSION = '${options.from}';`;
  if (!original.includes(`\n${line}\n`))
    throw new UnderstudyError('INTERNAL', `The demo service does not declare ${line}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-patch-'));
  try {
    for (const [side, text] of [
      ['a', original],
      ['b', original.replace(`\n${line}\n`, `\nconst VERSION = '${options.to}';\n`)],
    ] as const) {
      fs.mkdirSync(path.join(work, side, 'opt/demo'), { recursive: true });
      fs.writeFileSync(path.join(work, side, 'opt/demo/server.mjs'), text);
    }
    const diff = await exec(['diff', '-u', 'a/opt/demo/server.mjs', 'b/opt/demo/server.mjs'], {
      cwd: work,
      okCodes: [1],
    });
    const file = path.join(options.dir, `${options.name}.diff`);
    fs.writeFileSync(file, diff.stdout);
    return file;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
