/**
 * Reads the customer's observed payday (src/dunning/observed-payday.ts) as of `before`, through
 * the one SQL definition the refresh also uses (sql/023_observed_payday.sql). The day is taken in
 * the zone the planner uses for the customer: theirs, else the merchant's.
 */
import { DateTime } from 'luxon';
import type { Tx } from '../db.ts';
import { resolveZone } from './local-time.ts';
import type { ObservedPayday } from './observed-payday.ts';

export async function observedPaydayOf(
  tx: Tx,
  customerId: string,
  before: Date,
  merchantTimeZone: string,
): Promise<ObservedPayday | null> {
  const [r] = await tx<{ invoiceId: string; paidAt: Date; timeZone: string | null }[]>`
    select p.invoice_id as "invoiceId", p.paid_at as "paidAt", cu.time_zone as "timeZone"
      from customer_observed_payday(${customerId}, ${before}) p
      left join customers cu on cu.id = ${customerId}`;
  if (!r) return null;
  const { zone } = resolveZone(r.timeZone, merchantTimeZone);
  return { dayOfMonth: DateTime.fromJSDate(r.paidAt, { zone }).day, invoiceId: r.invoiceId, paidAt: r.paidAt };
}
