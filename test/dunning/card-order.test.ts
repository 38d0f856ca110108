import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import { planNext } from '../../src/dunning/scheduler.ts';
import { apply, testDeps } from '../events/helpers.ts';
import { seedFailedInvoice, startWorld, type RunnerWorld } from './runner-helpers.ts';

/**
 * Which card Stripe charges for an invoice. Stripe's Invoice.default_payment_method: "ID of the
 * default payment method for the invoice. It must belong to the customer associated with the
 * invoice. If not set, defaults to the subscription's default payment method, if any, or to the
 * default payment method in the customer's invoice settings." Subscription.default_payment_method:
 * "It must belong to the customer associated with the subscription. This takes precedence over
 * default_source. If neither are set, invoices will use the customer's
 * invoice_settings.default_payment_method or default_source."
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

/** A customer whose default card D fails, with a working card S set on the subscription only. */
async function subscriptionCard() {
  const s = await seedFailedInvoice(w, 'do_not_honor');
  const stripe = w.deps.gateway.stripe;
  const { paymentMethodId: S } = await w.sandbox.updateCard(s.customerId, {
    brand: 'visa',
    failure: null,
    expMonth: 12,
    expYear: 2031,
  });
  await stripe.customers.update(s.customerId, { invoice_settings: { default_payment_method: s.paymentMethod } });
  await stripe.subscriptions.update(s.subscriptionId!, { default_payment_method: S });
  return { s, S, D: s.paymentMethod };
}

describe('the card Stripe charges: invoice, then subscription, then customer', () => {
  it('the sandbox charges the subscription card before the customer default', async () => {
    const { s, S } = await subscriptionCard();
    const paid = await w.deps.gateway.stripe.invoices.pay(s.invoiceId);
    expect(paid.status).toBe('paid');
    const last = w.sandbox.charges(s.invoiceId).at(-1)!;
    expect(last.paymentMethod).toBe(S);
  });

  it('the worker reasons about and charges the subscription card, not the customer default', async () => {
    const { s, S, D } = await subscriptionCard();
    // Our copy learns the subscription's card from its event.
    const ev = w.sandbox
      .events()
      .filter(
        (e) => e.type === 'customer.subscription.updated' && (e.data.object as { id: string }).id === s.subscriptionId,
      )
      .at(-1) as unknown as Stripe.Event;
    await apply(w.db.sql, testDeps(createDunningHooks(w.deps)), ev);
    const [sub] = await w.db.sql`select default_payment_method from subscriptions where id = ${s.subscriptionId}`;
    expect(sub?.default_payment_method).toBe(S);

    const result = await w.db.sql.begin((tx) => planNext(tx, w.deps, s.caseId));
    expect(result.kind).toBe('planned');
    if (result.kind !== 'planned') return;
    expect(result.attempt.paymentMethod).toBe(S);
    expect(result.attempt.paymentMethod).not.toBe(D);
    expect(await executeAttempt(w.deps, result.attempt.id)).toBe('succeeded');
    expect(w.sandbox.charges(s.invoiceId).at(-1)!.paymentMethod).toBe(S);
  });
});
