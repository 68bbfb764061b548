/**
 * The host's Debian security archive, as apt already fetched and verified it, served on the demo's own
 * bridge: the archive's `InRelease` (signed by Debian) and `Packages` index from apt's lists, and the
 * `.deb` files fetched with `apt-get download`, each at the path the index names. The manager's apt
 * feed reads it like the archive itself and verifies everything against debian-archive-keyring, while
 * the demo's network stays inside 198.18.0.0/15 (apt's own fetching is its only outside traffic).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { UnderstudyError, checkRelativePath, exec } from '../core/index.ts';
import { isSecuritySuite, readHostSources, type AptSource } from '../monitor/index.ts';

export interface ArchiveMirror {
  /** The base URL on the bridge (`http://<host address>:<port>/`). */
  url: string;
  /** The host's source it copies (its suite and components are the feed's). */
  source: AptSource;
  architecture: string;
  /** Fetches `package=version` with apt-get download and serves the file at `filename`. */
  addDeb(o: { package: string; version: string; filename: string }): Promise<void>;
  close(): Promise<void>;
}

export interface ArchiveMirrorOptions {
  /** Where the copy lives (a directory of the demo's state dir). */
  root: string;
  /** The host's own address on the bridge, without the prefix length. */
  listenAddress: string;
}

/** apt's list file of an index target of `source` (apt-get indextargets), or undefined. */
async function listFile(
  source: AptSource,
  architecture: string,
  component: string,
): Promise<string | undefined> {
  const out = await exec([
    'apt-get',
    'indextargets',
    '--format',
    '$(FILENAME)|$(REPO_URI)',
    'Identifier: Packages',
    `Architecture: ${architecture}`,
    `Component: ${component}`,
  ]);
  const base = source.uri.endsWith('/') ? source.uri : `${source.uri}/`;
  const suitePart = `_dists_${source.suite.replace(/\//g, '_')}_`;
  return out.stdout
    .split('\n')
    .map((line) => line.split('|'))
    .find(([file, uri]) => uri === base && file?.includes(suitePart) && fs.existsSync(file))?.[0];
}

/** True when the InRelease at `file` is missing or past its Valid-Until. */
function staleInRelease(file: string): boolean {
  if (!fs.existsSync(file)) return true;
  const until = /^Valid-Until: (.+)$/m.exec(fs.readFileSync(file, 'utf8'))?.[1];
  return until !== undefined && Date.parse(until) < Date.now();
}

/** The host's security archive (see the file comment); runs `apt-get update` when its lists are stale. */
export async function startArchiveMirror(o: ArchiveMirrorOptions): Promise<ArchiveMirror> {
  const source = readHostSources().find((s) => isSecuritySuite(s.suite));
  if (!source)
    throw new UnderstudyError(
      'DEMO_ARCHIVE_UNAVAILABLE',
      "None of the host's apt sources is a security archive",
      {
        hint: 'Add e.g. "deb http://deb.debian.org/debian-security bookworm-security main" and run apt-get update.',
      },
    );
  const architecture = (await exec(['dpkg', '--print-architecture'])).stdout.trim();
  const component = source.components[0] ?? 'main';
  const stem = `${component}/binary-${architecture}/Packages`;
  let packagesList = await listFile(source, architecture, component);
  const inReleaseOf = (file: string): string =>
    file.replace(/_[^_]+_binary-[^_]+_Packages(\.[a-z0-9]+)?$/, '_InRelease');
  if (!packagesList || staleInRelease(inReleaseOf(packagesList))) {
    await exec(['apt-get', 'update', '-q'], { timeoutMs: 300_000 });
    packagesList = await listFile(source, architecture, component);
  }
  const inRelease = packagesList && inReleaseOf(packagesList);
  if (!packagesList || !inRelease || staleInRelease(inRelease))
    throw new UnderstudyError(
      'DEMO_ARCHIVE_UNAVAILABLE',
      `apt has no current index of ${source.uri} ${source.suite} ${stem} (from ${source.file})`,
      { hint: 'Run apt-get update and check that it reaches the archive.' },
    );
  const dist = path.join(o.root, 'dists', source.suite);
  fs.mkdirSync(path.dirname(path.join(dist, stem)), { recursive: true });
  fs.copyFileSync(inRelease, path.join(dist, 'InRelease'));
  // apt keeps the index in its own compression; InRelease also lists the uncompressed form's sha256.
  const text = await exec(['/usr/lib/apt/apt-helper', 'cat-file', packagesList], {
    maxBuffer: 512 * 1024 * 1024,
    timeoutMs: 120_000,
  });
  fs.writeFileSync(path.join(dist, stem), text.stdout);

  const server = http.createServer((request, response) => {
    const rel = decodeURIComponent(new URL(request.url ?? '/', 'http://mirror').pathname).replace(/^\/+/, '');
    const file = path.join(o.root, rel);
    if (
      request.method !== 'GET' ||
      rel.includes('..') ||
      !fs.existsSync(file) ||
      !fs.statSync(file).isFile()
    ) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, o.listenAddress, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${o.listenAddress}:${port}/`,
    source,
    architecture,
    async addDeb(d) {
      checkRelativePath(d.filename, {
        what: `The index points ${d.package} outside the archive:`,
        code: 'FEED_INDEX_INVALID',
      });
      const work = fs.mkdtempSync(path.join(o.root, '.download-'));
      fs.chmodSync(work, 0o755);
      try {
        // apt's own fetcher, verified by apt against the host's keyrings (as root it warns that the
        // download is unsandboxed).
        await exec(['apt-get', 'download', '-q', `${d.package}=${d.version}`], {
          cwd: work,
          timeoutMs: 300_000,
        });
        const [file] = fs.readdirSync(work).filter((f) => f.endsWith('.deb'));
        if (!file)
          throw new UnderstudyError(
            'DEMO_ARCHIVE_UNAVAILABLE',
            `apt-get download ${d.package}=${d.version} left no .deb`,
          );
        const target = path.join(o.root, d.filename);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.renameSync(path.join(work, file), target);
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
