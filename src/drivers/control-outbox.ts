/**
 * Reading the reports an LC writes into its control channel (every driver's). The channel belongs to the LC's root,
 * which may plant links, FIFOs or huge files there: everything goes through rootfs-io (paths resolve
 * inside the channel, never through a link), only regular files up to maxReportBytes are read, and
 * anything else is removed from the outbox and skipped.
 */
import { UnderstudyError, isErrno, isUnderstudyError } from '../core/index.ts';
import type { ControlReport } from './driver.ts';
import { listDirInRoot, readFileInRoot, removeInRoot } from './rootfs-io.ts';

const maxReportBytes = 1024 * 1024;
const maxReportsPerRead = 256;
const reportName = /^(\d+)-\d+-([a-z0-9_-]+)\.json$/i;

export function readOutbox(lc: string, control: string): ControlReport[] {
  const files = listDirInRoot(control, '/outbox')
    .filter((f) => reportName.test(f))
    .sort()
    .slice(0, maxReportsPerRead);
  const reports: ControlReport[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileInRoot(control, `/outbox/${file}`, {
        maxBytes: maxReportBytes,
        followLast: false,
      }).toString('utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue;
      if (!isUnderstudyError(error, 'LC_FILE_UNSAFE')) throw error;
      removeInRoot(control, `/outbox/${file}`);
      continue;
    }
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: a plain-text report, kept as text.
    }
    const m = reportName.exec(file);
    const stamp = Number(m?.[1] ?? 0);
    reports.push({ lc, kind: m?.[2] ?? 'unknown', at: new Date(stamp / 1e6).toISOString(), body, id: file });
  }
  return reports;
}

export function removeReport(control: string, id: string): void {
  if (!reportName.test(id)) throw new UnderstudyError('INVALID_ARGUMENT', `"${id}" is not a report id`);
  removeInRoot(control, `/outbox/${id}`);
}
