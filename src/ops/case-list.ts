import type { Sql } from '../db.ts';
import { PAGE_SIZE, type CaseFilters } from './filters.ts';

/** The case list at /ops: one page of cases, largest amount first, with keyset paging. */

export interface CaseListItem {
  id: number;
  invoiceId: string;
  customerId: string;
  email: string | null;
  amount: number;
  currency: string;
  status: string;
  paused: boolean;
  needsOps: boolean;
  declineCategory: string | null;
  declineCode: string | null;
  attempts: number;
  nextAttemptAt: Date | null;
  nextAttemptReason: string | null;
  openedAt: Date;
  policyVersion: string;
  cohort: string;
}

export interface CasePage {
  rows: CaseListItem[];
  /** The cursor of the next page; null on the last one. */
  next: { amount: number; id: number } | null;
}

/** `LIKE` treats `%` and `_` as wildcards: a searched email must match them literally. */
const likePrefix = (s: string) => `${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

const HOUR = 3_600_000;

/**
 * Ordered by (amount, id) descending and continued after the cursor, so every page is one range
 * scan of `dunning_cases_by_amount` (or its currency twin) however deep ops page. Amounts are
 * compared in minor units: filter by currency to compare like with like.
 */
export async function listCasePage(sql: Sql, f: CaseFilters, now: Date, limit = PAGE_SIZE): Promise<CasePage> {
  const none = sql``;
  const status = ['recovered', 'lost', 'closed'].includes(f.state) ? f.state : 'open';
  const dueBefore =
    f.due === 'overdue'
      ? now
      : f.due === '24h'
        ? new Date(now.getTime() + 24 * HOUR)
        : f.due === '7d'
          ? new Date(now.getTime() + 7 * 24 * HOUR)
          : null;
  const search = f.search;
  const rows = await sql`
    select c.id::float8 as id, c.invoice_id, c.customer_id, cu.email, c.amount::float8 as amount, c.currency, c.status,
           c.paused, c.last_decline_category, c.last_decline_code, c.next_attempt_at, c.next_attempt_reason, c.opened_at,
           c.policy_version, c.cohort,
           exists (select 1 from payment_attempts a where a.invoice_id = c.invoice_id and a.status = 'unknown') as needs_ops,
           (select count(*) from payment_attempts a
             where a.invoice_id = c.invoice_id and a.status in ('succeeded', 'declined', 'unknown', 'in_flight'))::int as attempts
      from dunning_cases c
      left join customers cu on cu.id = c.customer_id
     where c.status = ${status}
       ${f.state === 'active' ? sql`and not c.paused` : f.state === 'paused' ? sql`and c.paused` : none}
       ${
         f.state === 'needs_ops'
           ? sql`and c.invoice_id in (select a.invoice_id from payment_attempts a where a.status = 'unknown')`
           : none
       }
       ${f.currency ? sql`and c.currency = ${f.currency}` : none}
       ${f.category ? sql`and c.last_decline_category = ${f.category}` : none}
       ${f.policy ? sql`and c.policy_version = ${f.policy}` : none}
       ${f.cohort ? sql`and c.cohort = ${f.cohort}` : none}
       ${f.due === 'none' ? sql`and c.next_attempt_at is null` : dueBefore ? sql`and c.next_attempt_at < ${dueBefore}` : none}
       ${
         search === null
           ? none
           : search.startsWith('cus_')
             ? sql`and c.customer_id = ${search}`
             : search.startsWith('in_')
               ? sql`and c.invoice_id = ${search}`
               : sql`and c.customer_id in (select id from customers where lower(email) like ${likePrefix(search)})`
       }
       ${f.after ? sql`and (c.amount, c.id) < (${f.after.amount}, ${f.after.id})` : none}
     order by c.amount desc, c.id desc
     limit ${limit + 1}`;
  const items: CaseListItem[] = rows.slice(0, limit).map((r) => ({
    id: Number(r.id),
    invoiceId: r.invoice_id as string,
    customerId: r.customer_id as string,
    email: (r.email as string | null) ?? null,
    amount: Number(r.amount),
    currency: r.currency as string,
    status: r.status as string,
    paused: r.paused as boolean,
    needsOps: r.needs_ops as boolean,
    declineCategory: (r.last_decline_category as string | null) ?? null,
    declineCode: (r.last_decline_code as string | null) ?? null,
    attempts: Number(r.attempts),
    nextAttemptAt: (r.next_attempt_at as Date | null) ?? null,
    nextAttemptReason: (r.next_attempt_reason as string | null) ?? null,
    openedAt: r.opened_at as Date,
    policyVersion: r.policy_version as string,
    cohort: r.cohort as string,
  }));
  const last = items[items.length - 1];
  return { rows: items, next: rows.length > limit && last ? { amount: last.amount, id: last.id } : null };
}

/** The filter choices that exist in the data: policy versions of open cases. */
export async function policyVersions(sql: Sql): Promise<string[]> {
  const rows = await sql<
    { version: string }[]
  >`select version from policies order by created_at desc, version limit 50`;
  return rows.map((r) => r.version);
}
