/**
 * Who holds a piece of work (a run, a switch, a disk copy, the recovery): an owner identity made of
 * the process id, the process's start time (so that a recycled pid is not mistaken for the owner)
 * and a nonce per manager instance. An owner is alive while its process runs and, inside that
 * process, until its instance ends. Work whose owner is not alive may be taken over by recovery;
 * work whose owner is alive never is.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { isErrno } from './errors.ts';

export interface Owner {
  /** `<pid>:<start time in clock ticks>:<nonce>` */
  readonly id: string;
  /** This instance stops owning anything (what a crash does to it); used when an instance is done. */
  end(): void;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return undefined;
    throw error;
  }
}

const liveHere = new Set<string>();

/** A new owner identity for a manager instance of this process. */
export function createOwner(): Owner {
  const id = `${process.pid}:${startTimeOf(process.pid) ?? '0'}:${randomBytes(4).toString('hex')}`;
  liveHere.add(id);
  return { id, end: () => void liveHere.delete(id) };
}

/** The identity another process `pid` would have as an owner (no nonce: any instance of it). */
export function processIdentity(pid: number): string | undefined {
  const start = startTimeOf(pid);
  return start === undefined ? undefined : `${pid}:${start}:*`;
}

/** Whether the owner `id` is alive (see the file comment). Unparseable ids count as dead. */
export function isOwnerAlive(id: string | null | undefined): boolean {
  if (!id) return false;
  const [pidText, start, nonce] = id.split(':');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid && nonce !== '*') return liveHere.has(id);
  return start !== undefined && startTimeOf(pid) === start;
}

let processOwnerValue: Owner | undefined;

/** The owner every piece of work of this process has unless it is given another (one per process). */
export function processOwner(): Owner {
  processOwnerValue ??= createOwner();
  return processOwnerValue;
}
