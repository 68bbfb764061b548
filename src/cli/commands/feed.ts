/** `understudy feed add|list|remove`: the patch sources the monitor polls. */
import fs from 'node:fs';
import type { Command } from 'commander';

import { UnderstudyError, exec } from '../../core/index.ts';
import {
  addFeed,
  debianArchiveKeyring,
  isSecuritySuite,
  readHostSources,
  type AptSource,
  listFeeds,
  parseEd25519PublicKey,
  removeFeed,
  safeUrl,
  type AptOptions,
  type Feed,
  type FeedKind,
  type PatchServerOptions,
} from '../../monitor/index.ts';
import { table, type CliContext } from '../context.ts';

function collect(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UnderstudyError('INVALID_ARGUMENT', `${name} must be a positive number, not "${value}"`);
  return n;
}

/** The host's apt source for `suite`, or its security archive. */
function hostSource(suite: string | undefined): AptSource {
  const sources = readHostSources();
  const found = sources.find((s) => (suite ? s.suite === suite : isSecuritySuite(s.suite)));
  if (!found)
    throw new UnderstudyError(
      'INVALID_ARGUMENT',
      `The host's apt sources have no ${suite ? `suite "${suite}"` : 'security archive'} (read: /etc/apt/sources.list, /etc/apt/sources.list.d)`,
      {
        hint: `Suites configured: ${[...new Set(sources.map((s) => s.suite))].join(', ') || 'none'}. Give --url and --suite instead.`,
      },
    );
  return found;
}

async function hostArchitecture(): Promise<string> {
  return (await exec(['dpkg', '--print-architecture'])).stdout.trim();
}

interface AddOptions {
  kind: string;
  url?: string;
  debianArchiveKeyring?: boolean;
  fromHostSources?: boolean;
  interval: string;
  publicKey?: string;
  suite?: string;
  component: string[];
  arch: string[];
  keyring?: string;
  fingerprint: string[];
  security?: boolean;
  maxSize?: string;
  timeout?: string;
}

export function registerFeedCommands(program: Command, ctx: CliContext): void {
  const feed = program
    .command('feed')
    .description('patch sources: patch servers (HTTP/FTP, signed index) and apt repositories');

  feed
    .command('add <name>')
    .description('add a feed')
    .requiredOption('--kind <kind>', 'patch-server | apt')
    .option('--url <url>', 'http(s):// or ftp:// directory of the patch server, or the apt repository root')
    .option('--interval <seconds>', 'poll interval', '3600')
    .option(
      '--public-key <key>',
      'patch-server: ed25519 public key of the index (base64 of 32 bytes, or @file with PEM/base64)',
    )
    .option('--suite <suite>', 'apt: suite, e.g. bookworm-security')
    .option('--component <c>', 'apt: component(s)', collect, [])
    .option('--arch <a>', 'apt: architecture(s)', collect, [])
    .option('--keyring <file>', 'apt: OpenPGP keyring for gpgv')
    .option(
      '--fingerprint <fpr>',
      'apt: fingerprint of a key allowed to sign InRelease (repeatable)',
      collect,
      [],
    )
    .option(
      '--debian-archive-keyring',
      `apt: verify with Debian's archive keys (${debianArchiveKeyring}, package debian-archive-keyring)`,
    )
    .option(
      '--from-host-sources',
      "apt: the URL, suite, components and keyring of one of the host's apt sources (default: its security archive; --suite picks another)",
    )
    .option('--security', 'apt: register as security patches (default: when the suite says security)')
    .option('--max-size <bytes>', 'largest patch file accepted')
    .option('--timeout <ms>', 'per-request timeout')
    .action(async (name: string, o: AddOptions) => {
      let url = o.url;
      if (o.kind !== 'patch-server' && o.kind !== 'apt')
        throw new UnderstudyError('INVALID_ARGUMENT', `--kind must be patch-server or apt, not "${o.kind}"`);
      const kind: FeedKind = o.kind;
      const common = {
        maxPatchBytes: positive('--max-size', o.maxSize),
        timeoutMs: positive('--timeout', o.timeout),
      };
      let options: PatchServerOptions | AptOptions;
      if (kind === 'patch-server') {
        if (!o.publicKey)
          throw new UnderstudyError('INVALID_ARGUMENT', 'A patch-server feed needs --public-key');
        const publicKey = o.publicKey.startsWith('@')
          ? fs.readFileSync(o.publicKey.slice(1), 'utf8').trim()
          : o.publicKey;
        parseEd25519PublicKey(publicKey);
        options = { publicKey, ...common };
      } else if (o.fromHostSources) {
        const source = hostSource(o.suite);
        url = source.uri;
        const keyring = o.keyring ?? source.signedBy ?? debianArchiveKeyring;
        options = {
          suite: source.suite,
          components: o.component.length ? o.component : source.components,
          architectures: o.arch.length ? o.arch : [await hostArchitecture()],
          keyring,
          fingerprints: o.fingerprint,
          // apt's rule for a Signed-By keyring: every key in it may sign.
          trustKeyring: o.fingerprint.length === 0,
          security: o.security,
          ...common,
        };
      } else {
        options = {
          suite: o.suite ?? '',
          components: o.component.length ? o.component : ['main'],
          architectures: o.arch.length ? o.arch : ['amd64'],
          keyring: o.debianArchiveKeyring ? debianArchiveKeyring : (o.keyring ?? ''),
          fingerprints: o.fingerprint,
          trustKeyring: o.debianArchiveKeyring === true && o.fingerprint.length === 0 ? true : undefined,
          security: o.security,
          ...common,
        };
      }
      if (!url) throw new UnderstudyError('INVALID_ARGUMENT', 'A feed needs --url (or --from-host-sources)');
      const feedInput = {
        name,
        kind,
        url,
        intervalSeconds: positive('--interval', o.interval) ?? 3600,
        options,
      };
      const api = ctx.api();
      let added: Feed;
      // The daemon runs the same checks (addFeed); a keyring is a path on its host, which is this one.
      if (api) added = (await api.request<{ feed: Feed }>('POST', '/v1/feeds', feedInput)).feed;
      else {
        const { db } = ctx.openApp();
        try {
          added = addFeed(db, feedInput);
        } finally {
          db.close();
        }
      }
      ctx.print(
        { feed: added },
        () =>
          `Added feed ${added.name} (${added.kind}, ${safeUrl(added.url)}, every ${added.intervalSeconds}s)`,
      );
    });

  feed
    .command('list')
    .description('list feeds')
    .action(async () => {
      const api = ctx.api();
      let feeds: Feed[];
      if (api) feeds = (await api.request<{ feeds: Feed[] }>('GET', '/v1/feeds')).feeds;
      else {
        const { db } = ctx.openApp();
        try {
          feeds = listFeeds(db);
        } finally {
          db.close();
        }
      }
      ctx.print({ feeds: feeds.map((f) => ({ ...f, url: safeUrl(f.url) })) }, () =>
        feeds.length === 0
          ? 'No feeds.'
          : table(
              ['NAME', 'KIND', 'URL', 'INTERVAL'],
              feeds.map((f) => [f.name, f.kind, safeUrl(f.url), `${f.intervalSeconds}s`]),
            ),
      );
    });

  feed
    .command('remove <name>')
    .description('remove a feed (registered patches stay)')
    .action(async (name: string) => {
      const api = ctx.api();
      if (api) await api.request('DELETE', `/v1/feeds/${encodeURIComponent(name)}`);
      else {
        const { db } = ctx.openApp();
        try {
          removeFeed(db, name);
        } finally {
          db.close();
        }
      }
      ctx.print({ removed: name }, () => `Removed feed ${name}`);
    });
}
