/**
 * What understudy adds to a system image whose init is systemd (a Debian image it built, or a tree it
 * imported): the control-channel tool and a unit that reports start-up done over the channel. It also
 * takes out what belongs to the machine the tree came from (its hostname) and masks the units a
 * container cannot run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError } from '../core/index.ts';
import { assetsDir } from './rootfs.ts';

/**
 * Host path of `rel` inside the tree, refusing any directory on the way that is a symbolic link: an
 * imported tree is not trusted, and a link such as etc/systemd -> /etc/systemd would make a write
 * land on the host.
 */
function inTree(root: string, rel: string): string {
  const parts = rel.split('/').filter(Boolean);
  let current = root;
  for (const part of parts.slice(0, -1)) {
    current = path.join(current, part);
    let stat: fs.Stats | undefined;
    try {
      stat = fs.lstatSync(current);
    } catch {
      fs.mkdirSync(current, { mode: 0o755 });
      continue;
    }
    if (!stat.isDirectory())
      throw new UnderstudyError('PATH_OUTSIDE_ROOT', `${current} in the image is not a directory (a link?)`, {
        hint: 'The image tree must have real directories where understudy installs its files.',
      });
  }
  return path.join(current, parts.at(-1) ?? '');
}

/** Units that fail in an unprivileged container and would mark the system "degraded". */
const maskedUnits = ['sys-kernel-debug.mount', 'sys-kernel-tracing.mount', 'systemd-journald-audit.socket'];

export function bootsWithSystemd(root: string): boolean {
  for (const candidate of ['sbin/init', 'usr/sbin/init']) {
    try {
      const target = fs.readlinkSync(path.join(root, candidate));
      if (target.includes('systemd')) return true;
    } catch {
      // Not a symbolic link, or absent: try the next candidate.
    }
  }
  return false;
}

export function installSystemdReporting(root: string): void {
  const place = (from: string, to: string, mode: number): void => {
    const target = inTree(root, to);
    fs.rmSync(target, { force: true });
    fs.copyFileSync(path.join(assetsDir, from), target);
    fs.chmodSync(target, mode);
  };
  place('rootfs/usr/sbin/understudy-report', 'usr/sbin/understudy-report', 0o755);
  place('systemd/report-booted', 'usr/lib/understudy/report-booted', 0o755);
  place('systemd/understudy-booted.service', 'etc/systemd/system/understudy-booted.service', 0o644);
  const wanted = inTree(root, 'etc/systemd/system/multi-user.target.wants/understudy-booted.service');
  fs.rmSync(wanted, { force: true });
  fs.symlinkSync('/etc/systemd/system/understudy-booted.service', wanted);
  for (const unit of maskedUnits) {
    const link = inTree(root, `etc/systemd/system/${unit}`);
    fs.rmSync(link, { force: true });
    fs.symlinkSync('/dev/null', link);
  }
  // The LC's name is its hostname (set by the driver); a copied /etc/hostname would override it.
  fs.rmSync(inTree(root, 'etc/hostname'), { force: true });
  for (const dir of ['srv', 'run', 'tmp']) inTree(root, `${dir}/.`);
}
