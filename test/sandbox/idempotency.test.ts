import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import { createIdempotencyCache } from '../../src/sandbox/idempotency.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { manualClock } from './helpers.ts';

let sandbox: Sandbox | null = null;
afterEach(async () => {
  await sandbox?.stop();
  sandbox = null;
});

async function setup(
  opts: {
    rateLimitPerSecond?: number;
    rateLimitBurst?: number;
    latencyMs?: number;
    rateLimitNow?: () => number;
    idempotencyClock?: { now(): Date };
  } = {},
) {
  const clock = manualClock('2026-05-15T06:00:00Z');
  const sb = await startSandbox({ clock, seed: 3, ...opts });
  sandbox = sb;
  const healthy = await sb.createCustomer({
    email: 'b@example.test',
    name: 'B',
    country: 'US',
    card: { brand: 'visa', failure: 'processing_error', expMonth: 1, expYear: 2031 },
  });
  const invoice = await sb.createFailingInvoice(healthy.id, { amount: 900, currency: 'usd', subscription: true });
  // A working card from now on, so a retry's outcome depends only on idempotency.
  await sb.updateCard(healthy.id, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 });
  return { sb, clock, invoiceId: invoice.id, stripe: sb.stripe() };
}

const apiCharges = (sb: Sandbox, invoiceId: string) => sb.charges(invoiceId).filter((c) => c.source === 'api');

describe('idempotency, faults and rate limits', () => {
  it('replays the first response for a repeated key and charges once', async () => {
    const { sb, invoiceId, stripe } = await setup();
    const first = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'pay-1' });
    const second = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'pay-1' });
    expect(second).toEqual(first);
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(apiCharges(sb, invoiceId)).toHaveLength(1);
  });

  it('ages keys by the idempotency clock when given one: simulated days later, a request repeated at once is still a replay', async () => {
    // Stripe: "Keys are eligible to be removed from the system automatically after they're at
    // least 24 hours old". The worker repeats an unanswered request within seconds of real time;
    // the demo's scaled clock turns those seconds into simulated days, so keys aging on it would
    // be gone before the repeat, which Stripe would then run as a new request (a second charge,
    // or "already paid" for a charge of ours that succeeded). Keys age in real time there.
    const realTime = manualClock('2026-05-15T06:00:00Z');
    const { sb, clock, invoiceId, stripe } = await setup({ idempotencyClock: realTime });
    const first = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'pay-days' });
    clock.advance(2 * 86_400_000);
    realTime.advance(2_000);
    const second = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'pay-days' });
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(second.status).toBe(first.status);
    expect(apiCharges(sb, invoiceId)).toHaveLength(1);
  });

  it('replays a decline too, without asking the issuer again', async () => {
    const { sb, invoiceId, stripe } = await setup();
    const customer = (await stripe.invoices.retrieve(invoiceId)).customer as string;
    await sb.updateCard(customer, { brand: 'visa', failure: 'lost_card', expMonth: 1, expYear: 2031 });
    const a = (await stripe.invoices
      .pay(invoiceId, {}, { idempotencyKey: 'k' })
      .catch((e: unknown) => e)) as Stripe.errors.StripeCardError;
    const b = (await stripe.invoices
      .pay(invoiceId, {}, { idempotencyKey: 'k' })
      .catch((e: unknown) => e)) as Stripe.errors.StripeCardError;
    expect(b).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(b.charge).toBe(a.charge);
    expect(apiCharges(sb, invoiceId)).toHaveLength(1);
  });

  it('stores no result for a request that failed validation: the key runs again, even with other parameters', async () => {
    // Stripe: "Results are only saved if an API endpoint started executing. If incoming parameters
    // failed validation, or the request conflicted with another that was executing concurrently, no
    // idempotent result is saved because no API endpoint began execution. It is safe to retry these
    // requests."
    const { sb, invoiceId, stripe } = await setup();
    const bad = (await stripe.invoices
      .pay(invoiceId, { payment_method: 'pm_nope' }, { idempotencyKey: 'val' })
      .catch((e: unknown) => e)) as Stripe.errors.StripeInvalidRequestError;
    expect(bad).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(bad.param).toBe('payment_method');
    const again = (await stripe.invoices
      .pay(invoiceId, { payment_method: 'pm_nope' }, { idempotencyKey: 'val' })
      .catch((e: unknown) => e)) as Stripe.errors.StripeInvalidRequestError;
    expect(again.headers?.['idempotent-replayed']).toBeUndefined();
    const paid = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'val' });
    expect(paid.status).toBe('paid');
    expect(apiCharges(sb, invoiceId)).toHaveLength(1);
  });

  it('ignores idempotency keys on DELETE, as Stripe does', async () => {
    // Stripe: "Sending idempotency keys in GET and DELETE requests has no effect and should be
    // avoided, as these requests are idempotent by definition."
    const { invoiceId, stripe } = await setup();
    const inv = await stripe.invoices.retrieve(invoiceId);
    const sub = inv.parent!.subscription_details!.subscription as string;
    const canceled = await stripe.subscriptions.cancel(sub, {}, { idempotencyKey: 'del' });
    expect(canceled.status).toBe('canceled');
    const err = (await stripe.subscriptions
      .cancel(sub, {}, { idempotencyKey: 'del' })
      .catch((e: unknown) => e)) as Stripe.errors.StripeInvalidRequestError;
    // Not a replay of the first answer: the request ran again and found the subscription gone.
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(404);
  });

  it('refuses the same key with other parameters', async () => {
    const { invoiceId, stripe } = await setup();
    await stripe.invoices.update(invoiceId, { metadata: { a: '1' } }, { idempotencyKey: 'upd' });
    const err = await stripe.invoices
      .update(invoiceId, { metadata: { a: '2' } }, { idempotencyKey: 'upd' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect((await stripe.invoices.retrieve(invoiceId)).metadata).toEqual({ a: '1' });
  });

  it('forgets keys after 24 hours', async () => {
    const { clock, invoiceId, stripe } = await setup();
    await stripe.invoices.update(invoiceId, { metadata: { a: '1' } }, { idempotencyKey: 'old' });
    clock.advance(24 * 3_600_000 + 1000);
    const res = await stripe.invoices.update(invoiceId, { metadata: { a: '2' } }, { idempotencyKey: 'old' });
    expect(res.metadata).toEqual({ a: '2' });
  });

  it.each(['execute_then_500', 'execute_then_drop'] as const)(
    'charges once when the answer is lost after the charge (%s) and replays the success',
    async (kind) => {
      const { sb, invoiceId, stripe } = await setup();
      // The SDK retries a dropped connection once on its own (same key), so drop twice.
      sb.inject({
        kind,
        route: 'POST /v1/invoices/:id/pay',
        objectId: invoiceId,
        times: kind === 'execute_then_drop' ? 2 : 1,
      });
      const err = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'crash' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(
        kind === 'execute_then_500' ? Stripe.errors.StripeAPIError : Stripe.errors.StripeConnectionError,
      );
      expect(apiCharges(sb, invoiceId).map((c) => c.status)).toEqual(['succeeded']);
      const retried = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'crash' });
      expect(retried.status).toBe('paid');
      expect(apiCharges(sb, invoiceId)).toHaveLength(1);
    },
  );

  it('survives the SDK own retry of a dropped connection: one charge, success replayed', async () => {
    const { sb, invoiceId, stripe } = await setup();
    sb.inject({ kind: 'execute_then_drop', route: 'POST /v1/invoices/:id/pay' });
    const paid = await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'drop-once' });
    expect(paid.status).toBe('paid');
    expect(paid.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(apiCharges(sb, invoiceId)).toHaveLength(1);
  });

  it('runs nothing on a plain 500 fault, so the retry charges for real', async () => {
    const { sb, invoiceId, stripe } = await setup();
    sb.inject({ kind: 'http_500', route: 'POST /v1/invoices/:id/pay' });
    await expect(stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'x' })).rejects.toBeInstanceOf(
      Stripe.errors.StripeAPIError,
    );
    expect(apiCharges(sb, invoiceId)).toHaveLength(0);
    expect((await stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'x' })).status).toBe('paid');
  });

  it('holds a hung request until the client gives up', async () => {
    const { sb, invoiceId } = await setup();
    sb.inject({ kind: 'hang', route: 'GET /v1/invoices/:id' });
    const impatient = new Stripe(sb.apiKey, {
      host: sb.host,
      port: sb.port,
      protocol: 'http',
      maxNetworkRetries: 0,
      timeout: 200,
    });
    await expect(impatient.invoices.retrieve(invoiceId)).rejects.toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect((await impatient.invoices.retrieve(invoiceId)).id).toBe(invoiceId);
  });

  it('never runs two concurrent requests with one key', async () => {
    const { sb, invoiceId, stripe } = await setup({ latencyMs: 60 });
    const results = await Promise.allSettled([
      stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'race' }),
      stripe.invoices.pay(invoiceId, {}, { idempotencyKey: 'race' }),
    ]);
    const statuses = results.map((r) =>
      r.status === 'fulfilled' ? 200 : (r.reason as Stripe.errors.StripeError).statusCode,
    );
    expect(statuses.sort()).toEqual([200, 409]);
    expect(apiCharges(sb, invoiceId)).toHaveLength(1);
  });

  it('answers 429 beyond the configured rate', async () => {
    const { invoiceId, stripe } = await setup({ rateLimitPerSecond: 3 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => stripe.invoices.retrieve(invoiceId)));
    const limited = results.filter((r) => r.status === 'rejected');
    expect(limited.length).toBeGreaterThanOrEqual(3);
    for (const r of limited) expect(r.reason).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
  });

  it('lets a burst through, then limits to the steady rate, and records what it turned away', async () => {
    // 4 per second, and 4 at once: a burst of 10 gets 4 through and 6 answered 429. The limiter's
    // time is the test's, so a refill is a step of it, not a wait (and no request arrives late).
    let ms = 0;
    const { sb, invoiceId, stripe } = await setup({ rateLimitPerSecond: 4, rateLimitBurst: 4, rateLimitNow: () => ms });
    ms += 1_000; // setup's own requests took tokens: a second refills the bucket
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => stripe.invoices.pay(invoiceId, {}, { idempotencyKey: `burst-${i}` })),
    );
    const limited = results.filter(
      (r) => r.status === 'rejected' && r.reason instanceof Stripe.errors.StripeRateLimitError,
    );
    expect(limited).toHaveLength(6);
    expect(sb.rateLimited()).toHaveLength(limited.length);
    expect(sb.rateLimited()[0]).toMatchObject({
      method: 'POST',
      path: `/v1/invoices/${invoiceId}/pay`,
      idempotencyKey: expect.stringMatching(/^burst-\d$/),
    });
    // Nothing refills while the clock stands still...
    await expect(stripe.invoices.retrieve(invoiceId)).rejects.toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    // ...and a quarter second brings one token. A 429 stored nothing: the same key runs for real.
    ms += 250;
    const key = sb.rateLimited()[0]!.idempotencyKey!;
    const retried = await stripe.invoices
      .pay(invoiceId, {}, { idempotencyKey: key })
      .catch((e: unknown) => e as Stripe.errors.StripeError);
    expect((retried as Stripe.errors.StripeError).message).toBe('Invoice is already paid');
  });

  it('accepts faults over HTTP for a sandbox in another process', async () => {
    const { sb, invoiceId, stripe } = await setup();
    const res = await fetch(`${sb.url}/_sandbox/faults`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sb.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'http_500', route: 'GET /v1/invoices/:id' }),
    });
    expect(res.status).toBe(200);
    await expect(stripe.invoices.retrieve(invoiceId)).rejects.toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect((await stripe.invoices.retrieve(invoiceId)).id).toBe(invoiceId);
  });

  it('injects 429 on demand for one invoice only', async () => {
    const { sb, invoiceId, stripe } = await setup();
    sb.inject({ kind: 'http_429', objectId: invoiceId, times: 2 });
    await expect(stripe.invoices.retrieve(invoiceId)).rejects.toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    await expect(stripe.invoices.retrieve(invoiceId)).rejects.toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect((await stripe.invoices.retrieve(invoiceId)).id).toBe(invoiceId);
  });

  it('forgets keys once they expire, so memory does not grow with every request ever made', () => {
    const clock = manualClock('2026-05-15T06:00:00Z');
    const cache = createIdempotencyCache(clock, 60_000);
    for (let i = 0; i < 500; i += 1) {
      expect(cache.begin(`k${i}`, 'f').kind).toBe('new');
      cache.complete(`k${i}`, { status: 200, body: { i } });
    }
    clock.advance(30_000);
    expect(cache.begin('k1', 'f')).toEqual({ kind: 'replay', response: { status: 200, body: { i: 1 } } });
    expect(cache.begin('late', 'f').kind).toBe('new');
    expect(cache.size()).toBe(501);
    clock.advance(30_000);
    // The first 500 are a minute old now: gone, and the key can be used afresh.
    expect(cache.begin('k1', 'g').kind).toBe('new');
    expect(cache.size()).toBe(2);
  });
});
