import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { processEvent } from '../../src/events/processor.ts';
import { insertEvent } from '../../src/events/store.ts';
import { createLogger } from '../../src/log.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { retrieveInvoiceCharges, type StripeGateway } from '../../src/stripe/charge.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { manualClock } from '../sandbox/helpers.ts';
import { recordingHooks, testDeps } from './helpers.ts';

/**
 * Every failed charge on an invoice reaches the ledger by its charge id, whoever made it, from the
 * invoice's payments and the charges of their PaymentIntents, read from Stripe when its
 * `invoice.payment_failed` applies.
 *
 * Stripe, Invoice.attempt_count: "Any payment attempt counts as the first attempt, and subsequently
 * only automatic retries increment the attempt count. In other words, manual payment attempts after
 * the first attempt do not affect the retry schedule." So the count cannot say how many charges
 * there were. invoice.payment_failed: "Occurs whenever an invoice payment attempt fails, due to
 * either a declined payment, including soft decline, or to the lack of a stored payment method."
 * InvoicePayments: "When retrieving an invoice, there is an includable payments property containing
 * the first handful of those items. There is also a URL where you can retrieve the full (paginated)
 * list of payments." Charges list, `payment_intent`: "Only return charges that were created by the
 * PaymentIntent specified by this PaymentIntent ID." Webhooks: "Webhook endpoints might occasionally
 * receive the same event more than once", and Stripe doesn't guarantee the delivery of events in the
 * order that they're generated.
 */

const clock = manualClock('2026-06-01T08:00:00Z');
let db: TestDatabase;
let sandbox: Sandbox;
let requests = 0;
let gateway: StripeGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  sandbox = await startSandbox({ clock, seed: 21 });
  // The shared throttle every Stripe call goes through, counting what it lets pass.
  gateway = {
    stripe: sandbox.stripe(),
    throttle: {
      take: async () => {
        requests += 1;
      },
      waiting: () => 0,
    },
  };
});
afterAll(async () => {
  await sandbox?.stop();
  await db?.drop();
});

let lines: Array<Record<string, unknown>> = [];

function deps() {
  return {
    ...testDeps(recordingHooks().hooks),
    log: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }),
    fetchInvoiceCharges: (id: string) => retrieveInvoiceCharges(gateway, id),
  };
}

async function applyAll(events: readonly Stripe.Event[]): Promise<void> {
  const d = deps();
  for (const ev of events) {
    await insertEvent(db.sql, ev);
    await processEvent(db.sql, d, ev.id);
  }
}

function eventsOf(invoiceId: string, since = 0): Stripe.Event[] {
  return sandbox
    .events()
    .slice(since)
    .filter((e) => {
      const o = e.data.object as { id?: string; invoice?: string };
      return e.type === 'invoice.payment_failed' ? o.id === invoiceId : false;
    });
}

function chargeEventsOf(since = 0): Stripe.Event[] {
  return sandbox
    .events()
    .slice(since)
    .filter((e) => e.type === 'charge.failed' || e.type === 'payment_intent.payment_failed');
}

async function ledger(invoiceId: string) {
  return db.sql<{ chargeId: string | null; source: string; declineCode: string | null; brand: string | null }[]>`
    select charge_id as "chargeId", source, decline_code as "declineCode", card_brand as brand
      from payment_attempts where invoice_id = ${invoiceId} order by started_at, attempt_no`;
}

const hour = 3_600_000;

async function customerWithFailingCard(
  email: string,
  failure: 'insufficient_funds' | 'lost_card' = 'insufficient_funds',
) {
  return sandbox.createCustomer({
    email,
    name: 'Ines',
    country: 'DE',
    card: { brand: 'visa', failure, expMonth: 9, expYear: 2031 },
  });
}

describe('every failed charge on the ledger, by id', () => {
  test('12 payments, 14 failed charges made outside the worker, attempt_count 1: each charge once, in any order, twice over', async () => {
    const start = sandbox.events().length;
    const c = await customerWithFailingCard('ines@example.test');
    const inv = await sandbox.createFailingInvoice(c.id, { amount: 4_200, currency: 'eur', subscription: true });
    // The customer tries on the hosted invoice page, starting over (a new InvoicePayment) eleven
    // times, more than the first page of an expanded `payments` holds; a Dashboard user tries twice
    // on the current one.
    for (let i = 0; i < 11; i += 1) {
      clock.advance(6 * hour);
      await sandbox.failedTry(inv.id, 'hosted', { newPayment: true });
    }
    for (let i = 0; i < 2; i += 1) {
      clock.advance(6 * hour);
      await sandbox.failedTry(inv.id, 'dashboard');
    }
    const stripe = sandbox.stripe();
    expect((await stripe.invoices.retrieve(inv.id)).attempt_count).toBe(1);
    const charges = sandbox.charges(inv.id);
    expect(charges.filter((ch) => ch.status === 'failed')).toHaveLength(14);
    const payments = await stripe.invoicePayments.list({ invoice: inv.id, limit: 100 });
    expect(payments.data).toHaveLength(12);

    const failures = eventsOf(inv.id, start);
    expect(failures).toHaveLength(14);
    // Newest first, each failure event twice, the charge events in between, late.
    const shuffled = [...failures].reverse();
    requests = 0;
    await applyAll([shuffled[0]!, ...chargeEventsOf(start).slice(3, 9), ...shuffled, ...shuffled.slice(5)]);
    // Each of the 14 invoice events reads the invoice (1), the rest of its payments (1 page), and
    // the charges of each of its 12 PaymentIntents, all through the throttle; a copy of an event
    // already applied is stored once and reads nothing.
    expect(requests).toBe(14 * (1 + 1 + 12));

    const rows = await ledger(inv.id);
    expect(rows.map((r) => r.chargeId).sort()).toEqual(
      charges
        .filter((ch) => ch.status === 'failed')
        .map((ch) => ch.id)
        .sort(),
    );
    expect(
      rows.every((r) => r.source === 'stripe' && r.declineCode === 'insufficient_funds' && r.brand === 'visa'),
    ).toBe(true);
    // The charge events that arrive afterwards add nothing.
    await applyAll(chargeEventsOf(start));
    expect(await ledger(inv.id)).toHaveLength(14);
    // One clear line: all 14 charges of the 12 payments recorded by the first event to apply.
    const recorded = lines.filter((l) => l.msg === "failed charges recorded from the invoice's payments");
    expect(recorded.map((l) => [(l.charges as string[]).length, l.paymentIntents, l.attemptCount])).toEqual([
      [14, 12, 1],
    ]);
  });

  test('a customer without any card: one failure without a charge, a clear log line, nothing charged, once however often it arrives', async () => {
    const c = await sandbox.createCustomer({ email: 'ola@example.test', name: 'Ola', country: 'DE', card: null });
    const start = sandbox.events().length;
    const inv = await sandbox.createUnpayableInvoice(c.id, { amount: 900, currency: 'eur', subscription: true });
    const failures = eventsOf(inv.id, start);
    expect(failures).toHaveLength(1);
    expect(sandbox.charges(inv.id)).toEqual([]);
    lines = [];
    await applyAll([failures[0]!, failures[0]!, { ...failures[0]!, id: `${failures[0]!.id}_copy` }]);
    const rows = await ledger(inv.id);
    expect(rows.map((r) => [r.source, r.chargeId])).toEqual([['stripe', null]]);
    const [caseRow] = await db.sql`select status from dunning_cases where invoice_id = ${inv.id}`;
    expect(caseRow!.status).toBe('open');
    expect(lines.filter((l) => String(l.msg).startsWith('payment failure without a charge recorded'))).toHaveLength(1);
    // A charge without a card is refused by Stripe, and makes no charge: the runner reads that as
    // "refused" and skips.
    await expect(
      sandbox.stripe().invoices.pay(inv.id, {}, { idempotencyKey: `dunning:${inv.id}:2` }),
    ).rejects.toMatchObject({
      statusCode: 400,
      message: 'This customer has no attached payment source or default payment method.',
    });
    expect(sandbox.charges(inv.id)).toEqual([]);
  });

  test("a charge the time rules once gave to another invoice's row stays there: never counted twice, never a stuck event", async () => {
    const c = await customerWithFailingCard('uma@example.test');
    const start = sandbox.events().length;
    const a = await sandbox.createFailingInvoice(c.id, { amount: 1_000, currency: 'eur', subscription: true });
    const b = await sandbox.createFailingInvoice(c.id, { amount: 2_000, currency: 'eur', subscription: true });
    await applyAll(eventsOf(b.id, start));
    // As an older worker's customer-wide time match could have left it: a's charge on b's case.
    await db.sql`update payment_attempts set charge_id = ${a.chargeId} where invoice_id = ${b.id}`;
    lines = [];
    await applyAll(eventsOf(a.id, start));
    expect(await ledger(a.id)).toHaveLength(1);
    expect((await ledger(a.id))[0]!.chargeId).toBeNull();
    expect(lines.filter((l) => String(l.msg).includes("on another invoice's ledger row"))).toHaveLength(1);
  });

  test("our retry's own event while it is in flight; a hosted-page failure in the same moment waits for it", async () => {
    // A lost card: declined whoever tries it.
    const c = await customerWithFailingCard('nora@example.test', 'lost_card');
    const start = sandbox.events().length;
    const inv = await sandbox.createFailingInvoice(c.id, { amount: 1_900, currency: 'eur', subscription: true });
    await applyAll(eventsOf(inv.id, start));
    const [caseRow] = await db.sql`select id from dunning_cases where invoice_id = ${inv.id}`;
    // Our retry: in flight on the ledger while Stripe answers.
    clock.advance(24 * hour);
    const key = `dunning:${inv.id}:2`;
    await db.sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, idempotency_key, started_at)
                 values (${caseRow!.id}, ${inv.id}, 2, 'scheduled', 'in_flight', ${key}, ${clock.now()})`;
    const before = sandbox.events().length;
    const ours = await sandbox
      .stripe()
      .invoices.pay(inv.id, {}, { idempotencyKey: key })
      .then(
        () => null,
        (err: Stripe.errors.StripeError) => err.charge ?? null,
      );
    expect(ours).not.toBeNull();
    // Its own failure event (it names our request's key) applies before the runner records it:
    // the charge is left to the runner, nothing is guessed.
    await applyAll(eventsOf(inv.id, before));
    expect((await ledger(inv.id)).map((r) => r.chargeId)).toEqual([inv.chargeId, null]);
    // The customer fails on the hosted page while our answer is still on its way: that event cannot
    // tell which of the two new charges is ours, so it waits.
    const hostedFrom = sandbox.events().length;
    const hosted = await sandbox.failedTry(inv.id, 'hosted');
    const hostedEvent = eventsOf(inv.id, hostedFrom);
    await expect(applyAll(hostedEvent)).rejects.toThrow(/may be our attempt #2/);
    // The runner records its charge; the hosted failure, applied again, is the customer's.
    await db.sql`update payment_attempts set status = 'declined', charge_id = ${ours}, finished_at = ${clock.now()}
                 where idempotency_key = ${key}`;
    await applyAll(hostedEvent);
    await applyAll(eventsOf(inv.id, start));
    const rows = await ledger(inv.id);
    expect(rows.map((r) => [r.source, r.chargeId])).toEqual([
      ['stripe', inv.chargeId],
      ['scheduled', ours],
      ['stripe', hosted.chargeId],
    ]);
  });
});
