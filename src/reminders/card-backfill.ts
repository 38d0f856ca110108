/**
 * The card half of `dunning backfill`: the card-expiry scan needs every subscriber's renewal card
 * and its expiry, but subscriptions that have not changed since the install never sent an event.
 * Pages through Stripe's live subscriptions (100 per request, through the shared throttle) with
 * the customer's and the subscription's default payment methods expanded, and copies them.
 */
import type Stripe from 'stripe';
import type { Clock } from '../clock.ts';
import { lockCustomer } from '../customer-lock.ts';
import type { Sql } from '../db.ts';
import { recordCard } from '../events/cards.ts';
import { upsertCustomer, upsertSubscription } from '../events/objects.ts';
import { call, type StripeGateway } from '../stripe/charge.ts';
import { idOf } from '../stripe/read.ts';

export interface CardBackfillResult {
  pages: number;
  subscriptions: number;
  /** Card expiries copied (new, or newer than ours). */
  cards: number;
}

export interface CardBackfillDeps {
  sql: Sql;
  gateway: StripeGateway;
  clock: Clock;
  pageSize?: number;
  progress?: (r: CardBackfillResult) => void;
}

const asPaymentMethod = (v: string | Stripe.PaymentMethod | null | undefined): Stripe.PaymentMethod | null =>
  v && typeof v !== 'string' ? v : null;

export async function backfillRenewalCards(deps: CardBackfillDeps): Promise<CardBackfillResult> {
  const result: CardBackfillResult = { pages: 0, subscriptions: 0, cards: 0 };
  let startingAfter: string | undefined;
  for (;;) {
    const params: Stripe.SubscriptionListParams = {
      limit: deps.pageSize ?? 100,
      expand: ['data.default_payment_method', 'data.customer.invoice_settings.default_payment_method'],
      ...(startingAfter ? { starting_after: startingAfter } : {}),
    };
    const page = await call(deps.gateway, (s) => s.subscriptions.list(params));
    result.pages += 1;
    const readAt = deps.clock.now();
    for (const sub of page.data) {
      result.subscriptions += 1;
      const customer = typeof sub.customer === 'string' ? null : sub.customer;
      const customerId = idOf(sub.customer);
      await deps.sql.begin(async (tx) => {
        // The customer's lock first: the card-expiry scan and the mailer read these rows (the
        // renewal cards, a `pause_collection`) under it, and the processor writes them under it.
        if (customerId) await lockCustomer(tx, customerId);
        // As of creation, as backfill copies customers: any event we receive later wins.
        if (customer && !('deleted' in customer && customer.deleted)) {
          await upsertCustomer(tx, customer, new Date(customer.created * 1000));
          const pm = asPaymentMethod(customer.invoice_settings?.default_payment_method);
          if (pm && (await recordCard(tx, pm, readAt))) result.cards += 1;
        }
        const created = new Date(sub.created * 1000);
        await upsertSubscription(tx, sub, created);
        const own = asPaymentMethod(sub.default_payment_method);
        if (own && (await recordCard(tx, own, readAt))) result.cards += 1;
      });
    }
    deps.progress?.({ ...result });
    const last = page.data[page.data.length - 1];
    if (!page.has_more || !last) break;
    startingAfter = last.id;
  }
  return result;
}
