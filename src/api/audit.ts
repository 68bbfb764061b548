/** The audit log: every change made through the API, who made it, when, and how it ended. */
import type { Db } from '../store/index.ts';

export interface AuditEntry {
  id: number;
  at: string;
  operator: string;
  tokenId: string | null;
  action: string;
  target: string | null;
  status: number;
  details: Record<string, unknown>;
}

interface AuditRow {
  id: number;
  at: string;
  operator: string;
  token_id: string | null;
  action: string;
  target: string | null;
  status: number;
  details: string;
}

export function recordAudit(db: Db, entry: Omit<AuditEntry, 'id'>): AuditEntry {
  const result = db
    .prepare(
      'INSERT INTO audit_log (at, operator, token_id, action, target, status, details) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
    .run(
      entry.at,
      entry.operator,
      entry.tokenId,
      entry.action,
      entry.target,
      entry.status,
      JSON.stringify(entry.details),
    );
  return { ...entry, id: Number(result.lastInsertRowid) };
}

/** The newest entries first. */
export function listAudit(db: Db, limit = 100): AuditEntry[] {
  return (db.prepare('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(limit) as AuditRow[]).map(
    (r) => ({
      id: r.id,
      at: r.at,
      operator: r.operator,
      tokenId: r.token_id,
      action: r.action,
      target: r.target,
      status: r.status,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }),
  );
}

const secretFields = /^(code|token|secret|password|t|contentBase64)$/i;

/** The request body as the audit log keeps it: secrets and uploads replaced by a marker. */
export function auditableBody(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return {};
  return Object.fromEntries(
    Object.entries(body as Record<string, unknown>).map(([k, v]) => [
      k,
      secretFields.test(k) ? '[redacted]' : v,
    ]),
  );
}
