import type { Sql, Tx } from '../db.ts';
import { csvCell } from '../reports/render-csv.ts';

/** The ops audit log: every action taken at /ops, refused ones included. */

export const OPS_ACTIONS = ['retry-now', 'pause', 'resume'] as const;
export type OpsAction = (typeof OPS_ACTIONS)[number];
export type Outcome = 'done' | 'refused' | 'failed';

export interface AuditEntry {
  id: number;
  at: Date;
  actor: string;
  action: OpsAction;
  invoiceId: string;
  caseId: number | null;
  outcome: Outcome;
  detail: string;
}

export async function recordAudit(tx: Tx, e: Omit<AuditEntry, 'id'>): Promise<number> {
  const [row] = await tx<{ id: number }[]>`
    insert into ops_audit (at, actor, action, invoice_id, case_id, outcome, detail)
    values (${e.at}, ${e.actor}, ${e.action}, ${e.invoiceId}, ${e.caseId}, ${e.outcome}, ${e.detail})
    returning id::float8 as id`;
  return row!.id;
}

const COLUMNS = `id::float8 as id, at, actor, action, invoice_id as "invoiceId", case_id::float8 as "caseId", outcome, detail`;

export async function auditOfInvoice(sql: Sql, invoiceId: string): Promise<AuditEntry[]> {
  return sql<AuditEntry[]>`
    select ${sql.unsafe(COLUMNS)} from ops_audit where invoice_id = ${invoiceId} order by at, id`;
}

export async function auditEntry(sql: Sql, id: number): Promise<AuditEntry | null> {
  const [row] = await sql<AuditEntry[]>`select ${sql.unsafe(COLUMNS)} from ops_audit where id = ${id}`;
  return row ?? null;
}

/** The newest entries first, optionally of one invoice, at most `limit`. */
export async function auditLog(sql: Sql, o: { invoiceId: string | null; limit: number }): Promise<AuditEntry[]> {
  return sql<AuditEntry[]>`
    select ${sql.unsafe(COLUMNS)} from ops_audit
     where (${o.invoiceId}::text is null or invoice_id = ${o.invoiceId})
     order by at desc, id desc limit ${o.limit}`;
}

export function auditCsv(entries: AuditEntry[]): string {
  const header = ['id', 'at', 'actor', 'action', 'invoice_id', 'outcome', 'detail'];
  const lines = entries.map((e) =>
    [String(e.id), e.at.toISOString(), e.actor, e.action, e.invoiceId, e.outcome, e.detail].map(csvCell).join(','),
  );
  return [header.join(','), ...lines].join('\r\n') + '\r\n';
}
