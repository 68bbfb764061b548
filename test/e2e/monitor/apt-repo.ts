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
    await exec(['gpg', '--batch', '--yes', '--output', this.keyring, '--export'], {
      env: { GNUPGHOME: this.gnupgHome },
    });
    return this;
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
    options: { date?: Date; validUntil?: Date | null; tamper?: boolean; signWith?: string } = {},
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
      ['--clearsign', '--output', path.join(dist, 'InRelease'), path.join(dist, 'Release')],
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
