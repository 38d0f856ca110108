/** What the billing status is decided from: the customer and the invoices they owe, read in one go. */
import type { Sql } from '../db.ts';
import { storedAccessPolicy } from './access-policy.ts';
import type { DueInvoice } from './decide.ts';

export interface CustomerDue {
  preferredLocales: string[];
  due: DueInvoice[];
}

interface Row {
  invoiceId: string;
  currency: string;
  amountRemaining: number;
  hostedInvoiceUrl: string | null;
  failingSince: Date;
  actionRequired: boolean;
  access: unknown;
}

/**
 * Null when we know nothing of the customer (no customer row and no invoice). Owed: invoices still
 * open or uncollectible with something remaining, whose dunning case is open or ended lost (the
 * customer still owes a lost invoice until it is paid or voided).
 */
export async function loadCustomerDue(sql: Sql, customerId: string): Promise<CustomerDue | null> {
  const [customer] = await sql<{ preferredLocales: string[] | null }[]>`
    select c.preferred_locales as "preferredLocales" from customers c where c.id = ${customerId} and not c.deleted
    union all
    select null from invoices i where i.customer_id = ${customerId}
      and not exists (select 1 from customers c where c.id = ${customerId})
    limit 1`;
  if (!customer) return null;
  const rows = await sql<Row[]>`
    select i.id as "invoiceId", i.currency, i.amount_remaining::float8 as "amountRemaining",
           i.hosted_invoice_url as "hostedInvoiceUrl",
           coalesce(d.window_starts_at, d.opened_at) as "failingSince",
           (d.status = 'open' and (d.last_decline_category = 'authentication'
             or exists (select 1 from reminder_outbox o where o.case_id = d.id and o.kind = 'action_required'
                         and o.status in ('pending', 'sending', 'sent')))) as "actionRequired",
           p.body -> 'access' as access
      from dunning_cases d
      join invoices i on i.id = d.invoice_id
      join policies p on p.version = d.policy_version
     where d.customer_id = ${customerId}
       and d.status in ('open', 'lost')
       and i.status in ('open', 'uncollectible')
       and i.amount_remaining > 0
     order by coalesce(d.window_starts_at, d.opened_at), i.id`;
  return {
    preferredLocales: customer.preferredLocales ?? [],
    due: rows.map((r) => ({ ...r, access: storedAccessPolicy(r.access) })),
  };
}
