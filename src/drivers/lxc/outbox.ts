/**
 * Reading the reports an LC writes into its control channel. The outbox belongs to the LC's root, which
 * may plant symbolic links there (to /etc/shadow, or an outbox that is a link to a host directory):
 * the directory and every report are opened without following a link, and only regular files count.
 */
import fs from 'node:fs';
import { UnderstudyError, isErrno } from '../../core/index.ts';
import type { ControlReport } from '../driver.ts';

const reportName = /^(\d+)-\d+-([a-z0-9_-]+)\.json$/i;

function openNoFollow(file: string, flags: number): number | undefined {
  try {
    return fs.openSync(file, flags | fs.constants.O_NOFOLLOW);
  } catch (error) {
    // ELOOP: a symbolic link; ENOENT: acknowledged meanwhile; ENOTDIR: not a directory.
    if (isErrno(error, 'ELOOP') || isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

export function readOutbox(lc: string, outbox: string): ControlReport[] {
  const dirFd = openNoFollow(outbox, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  if (dirFd === undefined) return [];
  try {
    // Through the descriptor's /proc path, so the directory read is the one opened above.
    const dir = `/proc/self/fd/${dirFd}`;
    const reports: ControlReport[] = [];
    for (const file of fs
      .readdirSync(dir)
      .filter((f) => reportName.test(f))
      .sort()) {
      const fd = openNoFollow(`${dir}/${file}`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      if (fd === undefined) continue;
      let text: string;
      try {
        if (!fs.fstatSync(fd).isFile()) continue;
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: a plain-text report, kept as text.
      }
      const m = reportName.exec(file);
      const stamp = Number(m?.[1] ?? 0);
      reports.push({
        lc,
        kind: m?.[2] ?? 'unknown',
        at: new Date(stamp / 1e6).toISOString(),
        body,
        id: file,
      });
    }
    return reports;
  } finally {
    fs.closeSync(dirFd);
  }
}

export function removeReport(outbox: string, id: string): void {
  if (!reportName.test(id)) throw new UnderstudyError('INVALID_ARGUMENT', `"${id}" is not a report id`);
  const dirFd = openNoFollow(outbox, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  if (dirFd === undefined) return;
  try {
    fs.rmSync(`/proc/self/fd/${dirFd}/${id}`, { force: true });
  } finally {
    fs.closeSync(dirFd);
  }
}
