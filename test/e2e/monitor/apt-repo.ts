/**
 * A real apt repository built by the test: packages made with dpkg-deb, indexes with
 * apt-ftparchive, InRelease clearsigned with gpg in a throwaway GNUPGHOME.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec } from '../../../src/core/index.ts';
import { tempDir } from './fixtures.ts';

export interface TestPackage {
  name: string;
  version: string;
  description?: string;
}

export class AptRepo {
  readonly root: string;
  readonly suite: string;
  readonly gnupgHome: string;
  keyring = '';
  /** Fingerprint of the repository's own signing key. */
  fingerprint = '';

  constructor(suite: string) {
    this.root = tempDir('us-apt');
    this.suite = suite;
    this.gnupgHome = tempDir('us-gpg');
    fs.chmodSync(this.gnupgHome, 0o700);
  }

  private gpg(args: string[], home = this.gnupgHome): Promise<unknown> {
    return exec(['gpg', '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      env: { GNUPGHOME: home },
      timeoutMs: 60_000,
    });
  }

  /** Creates the signing key and exports the public keyring gpgv will use. */
  async init(): Promise<this> {
    await this.gpg([
      '--quick-gen-key',
      'understudy test repo <repo@example.test>',
      'ed25519',
      'sign',
      'never',
    ]);
    this.keyring = path.join(this.gnupgHome, 'repo-keyring.gpg');
    this.fingerprint = await this.fingerprintIn(this.gnupgHome);
    await this.exportKeyring();
    return this;
  }

  private async exportKeyring(): Promise<void> {
    await exec(['gpg', '--batch', '--yes', '--output', this.keyring, '--export'], {
      env: { GNUPGHOME: this.gnupgHome },
    });
  }

  private async fingerprintIn(home: string): Promise<string> {
    const listing = await exec(['gpg', '--batch', '--list-keys', '--with-colons'], {
      env: { GNUPGHOME: home },
    });
    const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(listing.stdout)?.[1];
    if (!fpr) throw new Error(`no key in ${home}`);
    return fpr;
  }

  /**
   * A key in its own GNUPGHOME. `fakedTime` creates it (and signs with it, via publish's gpgArgs) at
   * another time, e.g. in the past with a 1-day expiry: an expired key.
   */
  async keyHome(
    options: { fakedTime?: string; expire?: string } = {},
  ): Promise<{ home: string; fingerprint: string }> {
    const home = tempDir('us-gpg-k');
    fs.chmodSync(home, 0o700);
    await this.gpg(
      [
        ...(options.fakedTime ? ['--faked-system-time', options.fakedTime] : []),
        '--quick-gen-key',
        'other <other@example.test>',
        'ed25519',
        'sign',
        options.expire ?? 'never',
      ],
      home,
    );
    return { home, fingerprint: await this.fingerprintIn(home) };
  }

  /** Adds another home's public key to the repository keyring gpgv uses, revoked when asked. */
  async trust(
    other: { home: string; fingerprint: string },
    options: { revoked?: boolean } = {},
  ): Promise<void> {
    const pub = path.join(other.home, 'pub.gpg');
    await exec(['gpg', '--batch', '--yes', '--output', pub, '--export'], { env: { GNUPGHOME: other.home } });
    await this.gpg(['--import', pub]);
    if (options.revoked) {
      const cert = fs
        .readFileSync(path.join(other.home, 'openpgp-revocs.d', `${other.fingerprint}.rev`), 'utf8')
        .replace(/^:-----/m, '-----');
      const file = path.join(other.home, 'revoke.asc');
      fs.writeFileSync(file, cert);
      await this.gpg(['--import', file]);
    }
    await this.exportKeyring();
  }

  /** Puts a ready .deb (e.g. a real Debian package) into the pool under its own file name. */
  addDebFile(file: string): void {
    const pool = path.join(this.root, 'pool/main');
    fs.mkdirSync(pool, { recursive: true, mode: 0o755 });
    fs.copyFileSync(file, path.join(pool, path.basename(file)));
  }

  async addPackage(p: TestPackage): Promise<void> {
    const build = tempDir('us-deb');
    try {
      fs.mkdirSync(path.join(build, 'DEBIAN'));
      fs.mkdirSync(path.join(build, 'usr/share/doc', p.name), { recursive: true });
      fs.writeFileSync(path.join(build, 'usr/share/doc', p.name, 'README'), `${p.name} ${p.version}\n`);
      fs.writeFileSync(
        path.join(build, 'DEBIAN/control'),
        `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: amd64\nMaintainer: Test <repo@example.test>\nDescription: ${p.description ?? `${p.name} test package`}\n`,
      );
      const pool = path.join(this.root, 'pool/main');
      fs.mkdirSync(pool, { recursive: true, mode: 0o755 });
      await exec([
        'dpkg-deb',
        '--root-owner-group',
        '--build',
        build,
        path.join(pool, `${p.name}_${p.version}_amd64.deb`),
      ]);
    } finally {
      fs.rmSync(build, { recursive: true, force: true });
    }
  }

  /**
   * Regenerates Packages and InRelease. `date` and `validUntil` go into the signed Release;
   * `tamper` edits the signed text after signing; `signWith` signs with another GNUPGHOME.
   */
  async publish(
    options: {
      date?: Date;
      validUntil?: Date | null;
      tamper?: boolean;
      signWith?: string;
      /** Extra gpg arguments for signing, e.g. ['--digest-algo', 'SHA1']. */
      gpgArgs?: string[];
    } = {},
  ): Promise<void> {
    const dist = path.join(this.root, 'dists', this.suite);
    const bin = path.join(dist, 'main/binary-amd64');
    fs.mkdirSync(bin, { recursive: true });
    const packages = await exec(['apt-ftparchive', 'packages', 'pool'], { cwd: this.root });
    fs.writeFileSync(path.join(bin, 'Packages'), packages.stdout);
    await exec(['gzip', '-kf9n', path.join(bin, 'Packages')]);
    const release = await exec(
      [
        'apt-ftparchive',
        '-o',
        `APT::FTPArchive::Release::Suite=${this.suite}`,
        '-o',
        'APT::FTPArchive::Release::Codename=test',
        'release',
        '.',
      ],
      { cwd: dist },
    );
    const date = (options.date ?? new Date()).toUTCString().replace('GMT', 'UTC');
    let text = release.stdout.replace(/^Date: .*$/m, `Date: ${date}`);
    const validUntil =
      options.validUntil === undefined ? new Date(Date.now() + 7 * 86_400_000) : options.validUntil;
    if (validUntil)
      text = text.replace(
        /^(Date: .*)$/m,
        `$1\nValid-Until: ${validUntil.toUTCString().replace('GMT', 'UTC')}`,
      );
    fs.writeFileSync(path.join(dist, 'Release'), text);
    await this.gpg(
      [
        ...(options.gpgArgs ?? []),
        '--clearsign',
        '--output',
        path.join(dist, 'InRelease'),
        path.join(dist, 'Release'),
      ],
      options.signWith ?? this.gnupgHome,
    );
    if (options.tamper) {
      const signed = fs.readFileSync(path.join(dist, 'InRelease'), 'utf8');
      fs.writeFileSync(path.join(dist, 'InRelease'), signed.replace(/^Suite: .*$/m, 'Suite: tampered'));
    }
    // Readable by the HTTP server (runs as root here, but keep it honest).
    await exec(['chmod', '-R', 'a+rX', this.root]);
  }

  async otherKeyHome(): Promise<string> {
    const home = tempDir('us-gpg2');
    fs.chmodSync(home, 0o700);
    await this.gpg(['--quick-gen-key', 'stranger <stranger@example.test>', 'ed25519', 'sign', 'never'], home);
    return home;
  }

  cleanup(extra: string[] = []): void {
    for (const dir of [this.root, this.gnupgHome, ...extra]) fs.rmSync(dir, { recursive: true, force: true });
  }
}
