/**
 * The build's second half: tsc compiles the TypeScript into dist/, and this copies everything else
 * the code reads at run time next to it — every non-TypeScript file under src/ (the drivers' shell
 * scripts, the console's assets), with its mode, and the top-level assets/ (images, patch script,
 * demo service) — so that dist/ runs on its own.
 */
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');

function copyTree(from: string, to: string, keep: (file: string) => boolean): number {
  let copied = 0;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) copied += copyTree(source, target, keep);
    else if (entry.isFile() && keep(entry.name)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(source, target);
      fs.chmodSync(target, fs.statSync(source).mode & 0o7777);
      copied += 1;
    }
  }
  return copied;
}

const fromSrc = copyTree(path.join(root, 'src'), path.join(dist, 'src'), (f) => !f.endsWith('.ts'));
const fromAssets = copyTree(path.join(root, 'assets'), path.join(dist, 'assets'), () => true);
process.stdout.write(`copied ${fromSrc} files from src/ and ${fromAssets} from assets/ into dist/\n`);
