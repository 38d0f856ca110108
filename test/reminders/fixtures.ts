import type { Tx } from '../../src/db.ts';

export interface CaseFixture {
  customerId: string;
  invoiceId: string;
  email?: string | null;
  name?: string | null;
  locales?: string[];
  timeZone?: string | null;
  currency?: string;
  amount?: number;
  declineCategory?: string | null;
  declined?: number;
  hostedUrl?: string | null;
  reminders?: unknown;
  openedAt?: Date;
}

/** A customer, an open invoice, a policy and an open dunning case with `declined` declined attempts. */
export async function insertCase(sql: Tx, f: CaseFixture): Promise<number> {
  const at = f.openedAt ?? new Date('2026-03-02T10:00:00Z');
  const version = `v-${f.invoiceId}`;
  await sql`insert into policies (version, body) values (${version}, ${sql.json({ reminders: (f.reminders ?? null) as never })})`;
  await sql`
    insert into customers (id, email, name, preferred_locales, time_zone, stripe_updated_at)
    values (${f.customerId}, ${f.email === undefined ? `${f.customerId}@example.com` : f.email}, ${f.name ?? null},
            ${f.locales ?? []}, ${f.timeZone ?? null}, ${at})
    on conflict (id) do nothing`;
  const amount = f.amount ?? 4_900;
  const currency = f.currency ?? 'usd';
  await sql`
    insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, hosted_invoice_url, stripe_created, stripe_updated_at)
    values (${f.invoiceId}, ${f.customerId}, 'open', ${currency}, ${amount}, ${amount},
            ${f.hostedUrl === undefined ? `https://invoice.stripe.test/i/${f.invoiceId}` : f.hostedUrl}, ${at}, ${at})`;
  const [row] = await sql<{ id: number }[]>`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at, last_decline_category)
    values (${f.invoiceId}, ${f.customerId}, ${currency}, ${amount}, ${version}, 'smart', ${at}, ${f.declineCategory ?? 'generic'})
    returning id::float8 as id`;
  const caseId = row!.id;
  for (let n = 1; n <= (f.declined ?? 1); n += 1) {
    await sql`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, finished_at)
      values (${caseId}, ${f.invoiceId}, ${n}, ${n === 1 ? 'stripe' : 'scheduled'}, 'declined', ${at})`;
  }
  return caseId;
}
