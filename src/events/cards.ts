import type Stripe from 'stripe';
import type { Tx } from '../db.ts';
import { idOf } from '../stripe/read.ts';

/**
 * Our copy of card expiries: what the card-expiry
 * scan (src/reminders/card-expiry-scan.ts) reads, since Stripe sends no expiry warning for
 * PaymentMethods. Guarded like the other copies: an older event never overwrites newer state.
 */

/** Stores a card PaymentMethod's expiry; other types (SEPA, bank accounts) do not expire. Returns whether it applied. */
export async function recordCard(tx: Tx, pm: Stripe.PaymentMethod, at: Date): Promise<boolean> {
  if (pm.type !== 'card' || !pm.card) return false;
  const rows = await tx`
    insert into card_expiries as p (payment_method, customer_id, exp_month, exp_year, stripe_updated_at)
    values (${pm.id}, ${idOf(pm.customer)}, ${pm.card.exp_month}, ${pm.card.exp_year}, ${at})
    on conflict (payment_method) do update set
      customer_id = coalesce(excluded.customer_id, p.customer_id),
      exp_month = excluded.exp_month, exp_year = excluded.exp_year, stripe_updated_at = excluded.stripe_updated_at
    where excluded.stripe_updated_at >= p.stripe_updated_at
    returning payment_method`;
  return rows.length > 0;
}

export interface RenewalCard {
  customerId: string;
  /** Null: the customer has no default card at all. */
  paymentMethod: string | null;
  /** Null when we have not seen the card's details yet. */
  expMonth: number | null;
  expYear: number | null;
}

/**
 * A card the customer's renewals charge, and its expiry as far as we know it: `card` when it still
 * is one (a subscription's own card or the default it falls back to), else null in paymentMethod.
 */
export async function renewalCard(tx: Tx, customerId: string, card: string): Promise<RenewalCard | null> {
  const [row] = await tx<RenewalCard[]>`
    select c.id as "customerId", k.card as "paymentMethod", p.exp_month as "expMonth", p.exp_year as "expYear"
      from customers c
      cross join lateral (select case when is_renewal_card(c.id, ${card}) then ${card}::text end as card) k
      left join card_expiries p on p.payment_method = k.card
     where c.id = ${customerId}`;
  return row ?? null;
}
