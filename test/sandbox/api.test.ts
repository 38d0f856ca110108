import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { manualClock } from './helpers.ts';

const clock = manualClock('2026-05-12T09:00:00Z');
let sandbox: Sandbox;
let stripe: Stripe;

const card = (failure: Parameters<Sandbox['updateCard']>[1]['failure'], brand = 'visa') => ({
  brand,
  failure,
  expMonth: 4,
  expYear: 2030,
});

async function failingInvoice(failure: Parameters<typeof card>[0], amount = 2500, brand = 'visa') {
  const customer = await sandbox.createCustomer({
    email: 'ana@example.test',
    name: 'Ana',
    country: 'DE',
    preferredLocales: ['de'],
    timeZone: 'Europe/Berlin',
    card: card(failure, brand),
  });
  const invoice = await sandbox.createFailingInvoice(customer.id, { amount, currency: 'eur', subscription: true });
  return { customer, invoice };
}

beforeAll(async () => {
  sandbox = await startSandbox({ clock, seed: 11 });
  stripe = sandbox.stripe();
});
afterAll(async () => {
  await sandbox.stop();
});

describe('sandbox API through the real SDK', () => {
  it('creates a failing invoice that the SDK retrieves with Stripe shapes', async () => {
    const { customer, invoice } = await failingInvoice('insufficient_funds');
    const inv = await stripe.invoices.retrieve(invoice.id, { expand: ['payments'] });
    expect(inv).toMatchObject({
      object: 'invoice',
      status: 'open',
      customer: customer.id,
      amount_due: 2500,
      currency: 'eur',
      attempt_count: 1,
      collection_method: 'charge_automatically',
      parent: { subscription_details: { subscription: invoice.subscriptionId } },
    });
    expect(inv.hosted_invoice_url).toContain(sandbox.url);
    const pi = inv.payments?.data[0]?.payment.payment_intent;
    expect(typeof pi).toBe('string');
    const intent = await stripe.paymentIntents.retrieve(pi as string);
    expect(intent.last_payment_error?.decline_code).toBe('insufficient_funds');
    const charge = await stripe.charges.retrieve(invoice.chargeId);
    expect(charge.outcome?.advice_code).toBe('try_again_later');
    expect(charge.failure_code).toBe('card_declined');
    const sub = await stripe.subscriptions.retrieve(invoice.subscriptionId as string);
    expect(sub.status).toBe('past_due');
    const c = await stripe.customers.retrieve(customer.id);
    expect(c).toMatchObject({
      email: 'ana@example.test',
      preferred_locales: ['de'],
      metadata: { time_zone: 'Europe/Berlin' },
    });
    const types = sandbox
      .events()
      .filter((e) => (e.data.object as { id?: string }).id === invoice.id)
      .map((e) => e.type);
    expect(types).toContain('invoice.payment_failed');
  });

  it('declines a retry with a StripeCardError carrying the decline details', async () => {
    const { invoice } = await failingInvoice('lost_card', 2500, 'mastercard');
    const err = await stripe.invoices.pay(invoice.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
    const cardErr = err as Stripe.errors.StripeCardError;
    expect(cardErr.statusCode).toBe(402);
    expect(cardErr.code).toBe('card_declined');
    expect(cardErr.decline_code).toBe('lost_card');
    expect(cardErr.advice_code).toBe('do_not_try_again');
    // Mastercard's advice code 03, "do not try again"; a Visa card has no advice code (issuer-model.test.ts).
    expect(cardErr.network_advice_code).toBe('03');
    expect(cardErr.network_decline_code).toBe('41');
    expect(cardErr.charge).toMatch(/^ch_/);
    // A manual `invoices.pay` after the first attempt leaves `attempt_count` alone (see below).
    expect((await stripe.invoices.retrieve(invoice.id)).attempt_count).toBe(1);
    expect(sandbox.charges(invoice.id).map((c) => c.status)).toEqual(['failed', 'failed']);
  });

  it('answers a retry on a card that needs 3-D Secure as Stripe does: requires_action, no charge, no decline code', async () => {
    const { invoice } = await failingInvoice('authentication_required');
    const err = await stripe.invoices.pay(invoice.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
    const cardErr = err as Stripe.errors.StripeCardError;
    expect(cardErr).toMatchObject({
      statusCode: 402,
      code: 'invoice_payment_intent_requires_action',
      charge: undefined,
    });
    expect(cardErr.raw).not.toHaveProperty('decline_code'); // the SDK shows the missing code as ''
    expect(cardErr.payment_intent).toMatchObject({
      status: 'requires_action',
      next_action: { type: 'use_stripe_sdk' },
    });
    // Nothing reached the issuer: Stripe's first try is the only charge; a manual try does not count.
    expect(sandbox.charges(invoice.id)).toHaveLength(1);
    expect((await stripe.invoices.retrieve(invoice.id)).attempt_count).toBe(1);
    const ofRetry = sandbox
      .events()
      .filter((e) => e.request?.id === cardErr.requestId)
      .map((e) => e.type);
    expect(ofRetry).toEqual(
      expect.arrayContaining([
        'payment_intent.requires_action',
        'invoice.payment_failed',
        'invoice.payment_action_required',
      ]),
    );
    expect(ofRetry).not.toContain('charge.failed');
    // The customer completes 3-D Secure on the hosted invoice page, which pays the invoice.
    await sandbox.payInvoiceOutOfBand(invoice.id);
    expect((await stripe.invoices.retrieve(invoice.id)).status).toBe('paid');
  });

  it('counts attempts as Stripe does: the first try, then only automatic retries; manual tries are charges all the same', async () => {
    // Stripe, Invoice.attempt_count: "Any payment attempt counts as the first attempt, and
    // subsequently only automatic retries increment the attempt count. In other words, manual payment
    // attempts after the first attempt do not affect the retry schedule."
    const { invoice } = await failingInvoice('expired_card');
    const count = async () => (await stripe.invoices.retrieve(invoice.id)).attempt_count;
    expect(await count()).toBe(1);
    await stripe.invoices.pay(invoice.id).catch(() => undefined);
    await sandbox.failedTry(invoice.id, 'hosted');
    await sandbox.failedTry(invoice.id, 'dashboard');
    expect(await count()).toBe(1);
    await sandbox.automaticRetry(invoice.id);
    expect(await count()).toBe(2);
    expect(sandbox.charges(invoice.id).map((c) => [c.source, c.status])).toEqual([
      ['initial', 'failed'],
      ['api', 'failed'],
      ['hosted', 'failed'],
      ['dashboard', 'failed'],
      ['automatic', 'failed'],
    ]);
    // Stripe, invoice.payment_failed: "Occurs whenever an invoice payment attempt fails"; each
    // failed try is announced, counted or not, and names the count change only when there is one.
    const failures = sandbox
      .events()
      .filter((e) => e.type === 'invoice.payment_failed' && (e.data.object as { id: string }).id === invoice.id);
    expect(failures.map((e) => e.data.previous_attributes ?? null)).toEqual([
      { attempt_count: 0 },
      null,
      null,
      null,
      { attempt_count: 1 },
    ]);
  });

  it('keeps several InvoicePayments per invoice and pages them as Stripe does', async () => {
    // Stripe: "When retrieving an invoice, there is an includable payments property containing the
    // first handful of those items. There is also a URL where you can retrieve the full (paginated)
    // list of payments." Lists come newest first, a page at a time, with `has_more` when more follow.
    const { invoice } = await failingInvoice('generic_decline');
    clock.advance(60_000);
    const second = await sandbox.failedTry(invoice.id, 'hosted', { newPayment: true });
    clock.advance(60_000);
    const third = await sandbox.failedTry(invoice.id, 'hosted', { newPayment: true });
    const firstPage = await stripe.invoicePayments.list({ invoice: invoice.id, limit: 2 });
    expect(firstPage.has_more).toBe(true);
    const all = await stripe.invoicePayments
      .list({ invoice: invoice.id, limit: 2, expand: ['data.payment.payment_intent'] })
      .autoPagingToArray({ limit: 10 });
    expect(all).toHaveLength(3);
    const intents = all.map((p) => p.payment.payment_intent as Stripe.PaymentIntent);
    expect(intents.map((pi) => pi.id).slice(0, 2)).toEqual([third.paymentIntentId, second.paymentIntentId]);
    expect(all.map((p) => [p.is_default, p.status])).toEqual([
      [true, 'open'],
      [false, 'canceled'],
      [false, 'canceled'],
    ]);
    expect(intents.map((pi) => pi.last_payment_error?.decline_code)).toEqual([
      'generic_decline',
      'generic_decline',
      'generic_decline',
    ]);
    const inv = await stripe.invoices.retrieve(invoice.id, { expand: ['payments'] });
    expect(inv.payments?.data.map((p) => p.id)).toEqual(all.map((p) => p.id));
  });

  it('sends the fields the worker reads: card details on charges, cancellation details, the customer address, off-Stripe payments', async () => {
    const { invoice } = await failingInvoice('insufficient_funds', 1200, 'mastercard');
    // Charge.payment_method_details: "Details about the payment method at the time of the transaction."
    const ch = await stripe.charges.retrieve(invoice.chargeId);
    expect(ch.payment_method_details?.type).toBe('card');
    expect(ch.payment_method_details?.card).toMatchObject({ brand: 'mastercard', exp_year: 2030 });
    const pm = await stripe.paymentMethods.retrieve(ch.payment_method!);
    expect(ch.payment_method_details?.card?.fingerprint).toBe(pm.card?.fingerprint);
    // Invoice.customer_address: "The customer's address. Until the invoice is finalized, this field
    // will equal `customer.address`. Once the invoice is finalized, this field will no longer be updated."
    // Invoice.amount_paid_off_stripe: "Amount, in cents (or local equivalent), that was paid on the
    // invoice outside of Stripe."
    const inv = await stripe.invoices.retrieve(invoice.id);
    expect(inv.customer_address?.country).toBe('DE');
    expect(inv.amount_paid_off_stripe).toBe(0);
    // Subscription.cancellation_details: "Details about why this subscription was cancelled"; its
    // reason: "Why this subscription was canceled." (a cancellation through the API: cancellation_requested).
    const sub = await stripe.subscriptions.retrieve(invoice.subscriptionId!);
    expect(sub.cancellation_details).toEqual({ comment: null, feedback: null, feedback_option: null, reason: null });
    const canceled = await stripe.subscriptions.cancel(invoice.subscriptionId!);
    expect(canceled.cancellation_details?.reason).toBe('cancellation_requested');
  });

  it('pays after the customer gets a new default card, then refuses a second payment like Stripe', async () => {
    const { customer, invoice } = await failingInvoice('expired_card');
    const { paymentMethodId } = await sandbox.updateCard(customer.id, card(null));
    const c = await stripe.customers.retrieve(customer.id);
    expect((c as Stripe.Customer).invoice_settings.default_payment_method).toBe(paymentMethodId);
    const paid = await stripe.invoices.pay(invoice.id);
    expect(paid.status).toBe('paid');
    expect(paid.amount_paid).toBe(2500);
    expect((await stripe.subscriptions.retrieve(invoice.subscriptionId as string)).status).toBe('active');
    const again = (await stripe.invoices.pay(invoice.id).catch((e: unknown) => e)) as Stripe.errors.StripeError;
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again.message).toBe('Invoice is already paid');
  });

  it('sets the default payment method through customers.update', async () => {
    const { customer, invoice } = await failingInvoice('stolen_card');
    const pm = await sandbox.updateCard(customer.id, card(null));
    await stripe.customers.update(customer.id, {
      invoice_settings: { default_payment_method: customer.paymentMethodId },
    });
    await expect(stripe.invoices.pay(invoice.id)).rejects.toBeInstanceOf(Stripe.errors.StripeCardError);
    const updated = await stripe.customers.update(customer.id, {
      invoice_settings: { default_payment_method: pm.paymentMethodId },
    });
    expect(updated.invoice_settings.default_payment_method).toBe(pm.paymentMethodId);
    expect((await stripe.invoices.pay(invoice.id)).status).toBe('paid');
    const retrievedPm = await stripe.paymentMethods.retrieve(pm.paymentMethodId);
    expect(retrievedPm.card?.last4).toBe('4242');
  });

  it('voids, marks uncollectible and updates invoices', async () => {
    const a = await failingInvoice('generic_decline');
    const b = await failingInvoice('generic_decline');
    expect((await stripe.invoices.markUncollectible(a.invoice.id)).status).toBe('uncollectible');
    expect((await stripe.invoices.voidInvoice(b.invoice.id)).status).toBe('void');
    await expect(stripe.invoices.pay(b.invoice.id)).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    const updated = await stripe.invoices.update(a.invoice.id, {
      metadata: { dunning_case: 'c1' },
      auto_advance: false,
    });
    expect(updated).toMatchObject({ metadata: { dunning_case: 'c1' }, auto_advance: false });
    const typesFor = (id: string) =>
      sandbox
        .events()
        .filter((e) => (e.data.object as { id?: string }).id === id)
        .map((e) => e.type);
    expect(typesFor(a.invoice.id)).toContain('invoice.marked_uncollectible');
    expect(typesFor(b.invoice.id)).toContain('invoice.voided');
  });

  it('pauses and cancels subscriptions and opens portal sessions', async () => {
    const { customer, invoice } = await failingInvoice('do_not_honor');
    const subId = invoice.subscriptionId as string;
    const paused = await stripe.subscriptions.update(subId, { pause_collection: { behavior: 'void' } });
    expect(paused.pause_collection?.behavior).toBe('void');
    const canceled = await stripe.subscriptions.cancel(subId);
    expect(canceled.status).toBe('canceled');
    expect(sandbox.events().some((e) => e.type === 'customer.subscription.deleted')).toBe(true);
    const session = await stripe.billingPortal.sessions.create({
      customer: customer.id,
      return_url: 'https://merchant.test/back',
    });
    expect(session.url).toContain(`${sandbox.url}/portal/`);
    const page = await fetch(session.url);
    expect(page.status).toBe(200);
    expect(session.flow).toBeNull();
    expect(await page.text()).toContain('<p id="flow">home</p>');
    expect((await fetch(`${sandbox.url}/portal/bps_made_up`)).status).toBe(404);
  });

  it('opens portal deep links (flow_data) and refuses an unknown flow as Stripe does', async () => {
    const { customer } = await failingInvoice('expired_card');
    const session = await stripe.billingPortal.sessions.create({
      customer: customer.id,
      flow_data: { type: 'payment_method_update' },
    });
    expect(session.flow).toMatchObject({
      type: 'payment_method_update',
      after_completion: { type: 'portal_homepage' },
    });
    const page = await fetch(session.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<p id="flow">payment_method_update</p>');
    await expect(
      stripe.billingPortal.sessions.create({ customer: customer.id, flow_data: { type: 'teleport' } }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'flow_data[type]' });
  });

  it('lets the customer pay on the hosted invoice page', async () => {
    const { invoice } = await failingInvoice('insufficient_funds');
    const inv = await stripe.invoices.retrieve(invoice.id);
    const res = await fetch(`${inv.hosted_invoice_url}/pay`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect((await stripe.invoices.retrieve(invoice.id)).status).toBe('paid');
    expect(sandbox.charges(invoice.id).map((c) => c.source)).toEqual(['initial', 'hosted']);
  });

  it('pages through invoices with filters and cursors', async () => {
    const { customer } = await failingInvoice('insufficient_funds');
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1)
      ids.push(
        (await sandbox.createFailingInvoice(customer.id, { amount: 100 + i, currency: 'eur', subscription: false })).id,
      );
    const first = await stripe.invoices.list({ customer: customer.id, status: 'open', limit: 2 });
    expect(first.object).toBe('list');
    expect(first.has_more).toBe(true);
    const seen = [...first.data.map((i) => i.id)];
    const auto = await stripe.invoices
      .list({ customer: customer.id, status: 'open', limit: 2 })
      .autoPagingToArray({ limit: 100 });
    expect(auto).toHaveLength(5);
    const second = await stripe.invoices.list({
      customer: customer.id,
      status: 'open',
      limit: 2,
      starting_after: seen[1] as string,
    });
    seen.push(...second.data.map((i) => i.id));
    expect(new Set(seen).size).toBe(4);
    expect(seen).toEqual(expect.arrayContaining(ids.slice(1).reverse().slice(0, 3)));
    const none = await stripe.invoices.list({ customer: customer.id, collection_method: 'send_invoice' });
    expect(none.data).toEqual([]);
  });

  it('lets the model decide card updates after reminders, per customer', async () => {
    const base = { email: 'r@example.test', name: 'R', country: 'US', card: card('expired_card') };
    const never = await sandbox.createCustomer({ ...base, cardUpdateProbability: 0 });
    const always = await sandbox.createCustomer({ ...base, cardUpdateProbability: 1 });
    for (let i = 0; i < 5; i += 1) expect((await sandbox.reminderSent(never.id)).updated).toBe(false);
    const updated = await sandbox.reminderSent(always.id);
    expect(updated.updated).toBe(true);
    const c = (await stripe.customers.retrieve(always.id)) as Stripe.Customer;
    expect(c.invoice_settings.default_payment_method).toBe(updated.paymentMethodId);
  });

  it('refuses a wrong API key and unknown routes with Stripe-shaped errors', async () => {
    const wrong = new Stripe('rk_live_nope', {
      host: sandbox.host,
      port: sandbox.port,
      protocol: 'http',
      maxNetworkRetries: 0,
    });
    await expect(wrong.invoices.list()).rejects.toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    const res = await fetch(`${sandbox.url}/v1/widgets`, { headers: { authorization: `Bearer ${sandbox.apiKey}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    await expect(stripe.invoices.retrieve('in_missing')).rejects.toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
    });
  });
});
