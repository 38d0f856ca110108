import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.ts';
import { manualClock, startReceiver, waitFor } from './helpers.ts';

const secret = 'whsec_sandbox_test';
const verifier = new Stripe('sk_test_unused');
let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function setup(receiver: Awaited<ReturnType<typeof startReceiver>>, extra: Partial<SandboxOptions> = {}) {
  const clock = manualClock('2026-05-12T07:30:00Z');
  const sb = await startSandbox({
    clock,
    seed: 5,
    webhookUrl: receiver.url,
    webhookSecret: secret,
    webhookBackoffMs: 5,
    ...extra,
  });
  cleanup.push(
    () => sb.stop(),
    () => receiver.close(),
  );
  return { sb, clock };
}

async function failing(sb: Sandbox) {
  const c = await sb.createCustomer({
    email: 'c@example.test',
    name: 'C',
    country: 'FR',
    card: { brand: 'mastercard', failure: 'insufficient_funds', expMonth: 9, expYear: 2030 },
  });
  return {
    customerId: c.id,
    invoice: await sb.createFailingInvoice(c.id, { amount: 4200, currency: 'eur', subscription: true }),
  };
}

describe('sandbox webhooks', () => {
  it("renders events at the webhook endpoint's API version: before 2025-03-31.basil an invoice has top-level ids and no parent", async () => {
    // Stripe, WebhookEndpoint.api_version: "The API version that events are rendered as for this
    // webhook endpoint. You can't change this value after you create the endpoint." Before
    // 2025-03-31.basil the invoice carries `subscription`, `payment_intent` and `charge` at top level.
    const receiver = await startReceiver();
    const { sb } = await setup(receiver, { webhookApiVersion: '2024-06-20' });
    const { invoice } = await failing(sb);
    sb.setWebhookApiVersion(Stripe.API_VERSION);
    await sb.stripe().invoices.update(invoice.id, { metadata: { k: 'v' } });
    await sb.flushWebhooks();
    const events = receiver.received.map((r) => JSON.parse(r.body) as Stripe.Event);
    const failed = events.find((e) => e.type === 'invoice.payment_failed')!;
    expect(failed.api_version).toBe('2024-06-20');
    const legacy = failed.data.object as unknown as Record<string, unknown>;
    expect(legacy).not.toHaveProperty('parent');
    expect(legacy).toMatchObject({ subscription: invoice.subscriptionId, charge: invoice.chargeId });
    expect(String(legacy.payment_intent)).toMatch(/^pi_/);
    const updated = events.find((e) => e.type === 'invoice.updated')!;
    expect(updated.api_version).toBe(Stripe.API_VERSION);
    expect(updated.data.object).toMatchObject({
      parent: { subscription_details: { subscription: invoice.subscriptionId } },
    });
    expect(updated.data.object).not.toHaveProperty('subscription');
  });

  it('sends signed events that verify with constructEvent', async () => {
    const receiver = await startReceiver();
    const { sb, clock } = await setup(receiver);
    const { invoice } = await failing(sb);
    await sb.flushWebhooks();
    const events = receiver.received.map((r) =>
      verifier.webhooks.constructEvent(
        r.body,
        r.signature,
        secret,
        300,
        undefined,
        Math.floor(clock.now().getTime() / 1000),
      ),
    );
    const types = events.map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining([
        'charge.failed',
        'payment_intent.payment_failed',
        'invoice.payment_failed',
        'customer.subscription.updated',
      ]),
    );
    const failed = events.find((e) => e.type === 'invoice.payment_failed') as Stripe.InvoicePaymentFailedEvent;
    expect(failed).toMatchObject({
      object: 'event',
      api_version: Stripe.API_VERSION,
      livemode: false,
      created: Math.floor(clock.now().getTime() / 1000),
    });
    expect(failed.data.object.id).toBe(invoice.id);
    const charge = events.find((e) => e.type === 'charge.failed') as Stripe.ChargeFailedEvent;
    expect(charge.data.object.outcome).toMatchObject({ advice_code: 'try_again_later', network_decline_code: '51' });
    expect(charge.data.object.failure_code).toBe('card_declined');
    // A wrong secret must not verify: the signature really depends on it.
    const first = receiver.received[0];
    expect(() => verifier.webhooks.constructEvent(first?.body ?? '', first?.signature ?? '', 'whsec_other')).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
  });

  it('announces payment, card updates and final states', async () => {
    const receiver = await startReceiver();
    const { sb } = await setup(receiver, { cardUpdateProbability: 1 });
    const { customerId, invoice } = await failing(sb);
    const update = await sb.reminderSent(customerId);
    expect(update.updated).toBe(true);
    const stripe = sb.stripe();
    await stripe.invoices.pay(invoice.id, {}, { idempotencyKey: 'a1' });
    const other = await sb.createFailingInvoice(customerId, { amount: 1, currency: 'eur', subscription: false });
    expect(sb.charges(other.id)[0]?.status).toBe('succeeded');
    await sb.flushWebhooks();
    const types = receiver.received.map((r) => (JSON.parse(r.body) as { type: string }).type);
    expect(types).toEqual(
      expect.arrayContaining([
        'payment_method.attached',
        'customer.updated',
        'invoice.paid',
        'invoice.payment_succeeded',
      ]),
    );
    const paid = receiver.received
      .map((r) => JSON.parse(r.body) as Stripe.Event)
      .find((e) => e.type === 'invoice.paid');
    expect(paid?.request).toMatchObject({ idempotency_key: 'a1' });
  });

  it('duplicates a share of deliveries when configured', async () => {
    const receiver = await startReceiver();
    const { sb } = await setup(receiver, { duplicateShare: 1 });
    await failing(sb);
    await sb.flushWebhooks();
    const ids = receiver.received.map((r) => (JSON.parse(r.body) as { id: string }).id);
    expect(ids.length).toBe(sb.events().length * 2);
    expect(new Set(ids).size).toBe(sb.events().length);
  });

  it('reorders the events of one operation when configured', async () => {
    const receiver = await startReceiver();
    const { sb } = await setup(receiver, { reorder: true });
    for (let i = 0; i < 5; i += 1) await failing(sb);
    await sb.flushWebhooks();
    const arrived = receiver.received.map((r) => (JSON.parse(r.body) as { id: string }).id);
    const emitted = sb.events().map((e) => e.id);
    expect([...arrived].sort()).toEqual([...emitted].sort());
    expect(arrived).not.toEqual(emitted);
  });

  it("holds back a share of API requests' events and of duplicates, so they cross later operations, the same way for a seed", async () => {
    async function story() {
      const receiver = await startReceiver();
      // Held at least 1.5 s: far longer than the two API requests it must cross take on a busy
      // machine (with up to 300 ms, a loaded machine let the held failure arrive first).
      const { sb } = await setup(receiver, {
        seed: 8,
        lateShare: 0.5,
        lateMinMs: 1500,
        lateMaxMs: 2000,
        duplicateShare: 0.5,
      });
      const c = await sb.createCustomer({
        email: 'g@example.test',
        name: 'G',
        country: 'FR',
        card: { brand: 'mastercard', failure: 'generic_decline', expMonth: 9, expYear: 2030 },
      });
      const invoice = await sb.createFailingInvoice(c.id, { amount: 4200, currency: 'eur', subscription: true });
      const stripe = sb.stripe();
      await expect(stripe.invoices.pay(invoice.id, {}, { idempotencyKey: 'retry' })).rejects.toBeInstanceOf(
        Stripe.errors.StripeCardError,
      );
      await sb.updateCard(c.id, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 });
      await stripe.invoices.pay(invoice.id, {}, { idempotencyKey: 'after-update' });
      await sb.flushWebhooks();
      const arrived = receiver.received.map((r) => JSON.parse(r.body) as Stripe.Event);
      return {
        sb,
        arrived,
        held: sb
          .deliveries()
          .filter((d) => d.heldMs > 0)
          .map((d) => `${d.eventId}${d.duplicate ? '+dup' : ''}:${d.heldMs}`)
          .sort(),
      };
    }
    const { sb, arrived, held } = await story();
    const types = arrived.map((e) => e.type);
    // The retry's failure arrives after the payment that closed the invoice.
    expect(types.lastIndexOf('invoice.payment_failed')).toBeGreaterThan(types.indexOf('invoice.paid'));
    const retryEvents = sb.events().filter((e) => e.request?.idempotency_key === 'retry');
    const firstTry = (id: string) => sb.deliveries().find((d) => d.eventId === id && !d.duplicate && d.attempt === 1)!;
    // Held together: the failure never arrives without the charge that explains it.
    expect(new Set(retryEvents.map((e) => firstTry(e.id).heldMs)).size).toBe(1);
    expect(firstTry(retryEvents[0]!.id).heldMs).toBeGreaterThan(0);
    // Stripe's own renewal charge (no API request) is never held; duplicates may be.
    const renewal = sb.events().filter((e) => (e.request?.id ?? null) === null && e.type === 'invoice.payment_failed');
    expect(renewal.map((e) => firstTry(e.id).heldMs)).toEqual([0]);
    expect(sb.deliveries().some((d) => d.duplicate && d.heldMs > 0)).toBe(true);
    // Still at least once: every event arrives.
    expect(new Set(arrived.map((e) => e.id))).toEqual(new Set(sb.events().map((e) => e.id)));
    // Which deliveries wait, and how long, comes from the seed.
    expect((await story()).held).toEqual(held);
  });

  it('redelivers on non-2xx with bounded attempts, without blocking the API', async () => {
    const receiver = await startReceiver((n) => (n <= 2 ? 500 : 200));
    const { sb } = await setup(receiver, { webhookMaxAttempts: 3 });
    const c = await sb.createCustomer({
      email: 'd@example.test',
      name: 'D',
      country: 'US',
      card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2030 },
    });
    await sb.updateCard(c.id, { brand: 'visa', failure: null, expMonth: 2, expYear: 2031 });
    await waitFor('deliveries to finish', () => receiver.received.length >= 4 && receiver.received.length);
    await sb.flushWebhooks();
    const deliveries = sb.deliveries();
    expect(deliveries.filter((d) => d.status === 500)).toHaveLength(2);
    expect(deliveries.every((d) => d.attempt <= 3)).toBe(true);
    const okIds = new Set(deliveries.filter((d) => d.status === 200).map((d) => d.eventId));
    expect(okIds.size).toBe(sb.events().length);
  });

  it('keeps at most webhookConcurrency deliveries in flight; the rest wait their turn and all arrive', async () => {
    let inFlight = 0;
    let most = 0;
    let received = 0;
    const server = createServer((req, res) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      req.resume();
      req.on('end', () =>
        setTimeout(() => {
          inFlight -= 1;
          received += 1;
          res.writeHead(200).end();
        }, 15),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
    const sb = await startSandbox({
      clock: manualClock('2026-05-12T07:30:00Z'),
      seed: 5,
      webhookUrl: url,
      webhookSecret: secret,
      webhookConcurrency: 3,
    });
    cleanup.push(
      () => sb.stop(),
      () => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (let i = 0; i < 6; i += 1) await failing(sb);
    await sb.flushWebhooks();
    expect(received).toBeGreaterThan(20);
    expect(received).toBe(sb.deliveries().length);
    expect(most).toBe(3);
  });

  it('gives up after the last attempt', async () => {
    const receiver = await startReceiver(() => 503);
    const { sb } = await setup(receiver, { webhookMaxAttempts: 2 });
    const c = await sb.createCustomer({
      email: 'e@example.test',
      name: 'E',
      country: 'US',
      card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2030 },
    });
    await sb.updateCard(c.id, { brand: 'visa', failure: null, expMonth: 2, expYear: 2031 });
    await sb.flushWebhooks();
    expect(receiver.received).toHaveLength(sb.events().length * 2);
  });
});
