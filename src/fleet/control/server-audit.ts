/**
 * Refusals happen inside PostgreSQL (TLS handshake, pg_hba `cert`, row-level security, claim_work),
 * so the server's structured log is where they are seen. This imports the refusals from the
 * jsonlog into fleet.audit, resuming where the previous import stopped (offset kept in the DB).
 */
import fs from 'node:fs';
import type pg from 'pg';

interface JsonLogEntry {
  timestamp?: string;
  user?: string;
  remote_host?: string;
  error_severity?: string;
  state_code?: string;
  message?: string;
  statement?: string;
}

export interface ServerRefusal {
  at: string;
  actor: string;
  action: 'connect' | 'query';
  reason: string;
  stateCode?: string;
}

/** What in the server log counts as a refusal worth auditing; undefined for everything else. */
export function refusalOf(entry: JsonLogEntry): ServerRefusal | undefined {
  const message = entry.message ?? '';
  const severity = entry.error_severity ?? '';
  const actor = entry.user ?? (entry.remote_host ? `unauthenticated@${entry.remote_host}` : 'unknown');
  const at = entry.timestamp ?? '';
  const connectRefusal =
    /certificate|SSL|pg_hba|not permitted to log in|authentication failed|does not exist/i.test(message) &&
    ['FATAL', 'LOG', 'ERROR'].includes(severity) &&
    !/^connection (received|authorized)/.test(message);
  if (connectRefusal && (severity === 'FATAL' || /could not accept SSL connection/.test(message)))
    return { at, actor, action: 'connect', reason: message, stateCode: entry.state_code };
  if (severity === 'ERROR' && (entry.state_code === '42501' || /row-level security/.test(message)))
    return { at, actor, action: 'query', reason: message, stateCode: entry.state_code };
  return undefined;
}

/** Imports new refusals from `logFile`; returns how many were added. */
export async function importServerAudit(db: pg.Pool, logFile: string): Promise<number> {
  const cursor = await db.query<{ offset_bytes: string }>(
    'SELECT offset_bytes FROM fleet.audit_cursor WHERE log_file = $1',
    [logFile],
  );
  let offset = Number(cursor.rows[0]?.offset_bytes ?? 0);
  const size = fs.statSync(logFile).size;
  if (size < offset) offset = 0; // the log was replaced
  if (size === offset) return 0;
  const fd = fs.openSync(logFile, 'r');
  const buffer = Buffer.alloc(size - offset);
  try {
    fs.readSync(fd, buffer, 0, buffer.length, offset);
  } finally {
    fs.closeSync(fd);
  }
  // Only whole lines; a line being written stays for the next import.
  const end = buffer.lastIndexOf(0x0a) + 1;
  const text = buffer.subarray(0, end).toString('utf8');
  const refusals: ServerRefusal[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let entry: JsonLogEntry;
    try {
      entry = JSON.parse(line) as JsonLogEntry;
    } catch (error) {
      if (error instanceof SyntaxError) continue;
      throw error;
    }
    const refusal = refusalOf(entry);
    if (refusal) refusals.push(refusal);
  }
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    for (const r of refusals)
      await client.query(
        `INSERT INTO fleet.audit (at, actor, action, outcome, detail) VALUES ($1, $2, $3, 'refused', $4)`,
        [
          r.at || new Date().toISOString(),
          r.actor,
          r.action,
          { reason: r.reason, sqlstate: r.stateCode, source: 'server-log' },
        ],
      );
    await client.query(
      `INSERT INTO fleet.audit_cursor (log_file, offset_bytes) VALUES ($1, $2)
       ON CONFLICT (log_file) DO UPDATE SET offset_bytes = $2`,
      [logFile, offset + end],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
  return refusals.length;
}
