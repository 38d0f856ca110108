import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backfill, type BackfillProgress } from '../../src/dunning/backfill.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';
import { createPolicySource } from '../../src/dunning/scheduler.ts';
import { startWorld, type RunnerWorld } from './runner-helpers.ts';

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

describe('backfill', () => {
  it('pages through open invoices, opens a case for each failed one and plans its next attempt; a rerun changes nothing', async () => {
    const failing: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const c = await w.sandbox.createCustomer({
        email: `c${i}@example.com`,
        name: `C ${i}`,
        country: 'US',
        timeZone: 'America/New_York',
        card: {
          brand: 'visa',
          failure: i % 2 === 0 ? 'insufficient_funds' : 'generic_decline',
          expMonth: 1,
          expYear: 2030,
        },
      });
      failing.push(
        (await w.sandbox.createFailingInvoice(c.id, { amount: 1_000 + i, currency: 'usd', subscription: true })).id,
      );
    }
    // Paid at once: not open, so not listed and never a case.
    const good = await w.sandbox.createCustomer({
      email: 'g@example.com',
      name: 'G',
      country: 'US',
      card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2030 },
    });
    const paid = await w.sandbox.createFailingInvoice(good.id, { amount: 500, currency: 'usd', subscription: false });

    const progress: BackfillProgress[] = [];
    const run = () =>
      backfill({
        sql: w.db.sql,
        gateway: w.deps.gateway,
        scheduler: w.deps,
        policy: w.policy,
        pageSize: 2,
        progress: (p) => progress.push(p),
      });
    const totals = await run();
    expect(totals).toMatchObject({ pages: 3, seen: 5, opened: 5, planned: 5 });
    expect(progress.map((p) => p.seen)).toEqual([2, 4, 5]);

    const cases = await w.db.sql`select invoice_id from dunning_cases order by invoice_id`;
    expect(cases.map((c) => c.invoice_id)).toEqual([...failing].sort());
    expect(cases.map((c) => c.invoice_id)).not.toContain(paid.id);
    const planned = await w.db.sql`
      select a.invoice_id, a.attempt_no, a.plan_reason, c.next_attempt_at from payment_attempts a join dunning_cases c using (invoice_id)
       where a.status = 'planned' order by a.invoice_id`;
    expect(planned).toHaveLength(5);
    for (const p of planned) {
      expect(p.attempt_no).toBe(2); // after Stripe's own first try
      expect(p.next_attempt_at).not.toBeNull();
    }
    const [tz] = await w.db.sql`select count(*)::int as n from customers where time_zone = 'America/New_York'`;
    expect(tz!.n).toBe(5);
    const jobs = await w.db.sql`select count(*)::int as n from pgboss.job where name = 'dunning-attempts'`;
    expect(jobs[0]!.n).toBe(5);

    expect(await run()).toMatchObject({ seen: 5, opened: 0, planned: 0 });
    const [after] = await w.db.sql`select count(*)::int as n from payment_attempts where status = 'planned'`;
    expect(after!.n).toBe(5);
  });

  it("records what the bank said to Stripe's last try, so a stolen card is never retried blindly", async () => {
    const c = await w.sandbox.createCustomer({
      email: 'stolen@example.com',
      name: 'S',
      country: 'DE',
      card: { brand: 'visa', failure: 'stolen_card', expMonth: 1, expYear: 2030 },
    });
    const inv = await w.sandbox.createFailingInvoice(c.id, { amount: 2_500, currency: 'eur', subscription: true });
    await backfill({ sql: w.db.sql, gateway: w.deps.gateway, scheduler: w.deps, policy: w.policy });
    const [first] = await w.db.sql`select * from payment_attempts where invoice_id = ${inv.id} and attempt_no = 1`;
    expect(first).toMatchObject({
      source: 'stripe',
      status: 'declined',
      decline_code: 'stolen_card',
      decline_category: 'hard',
      payment_method: c.paymentMethodId,
      payment_intent_id: expect.stringMatching(/^pi_/),
      stripe_event_id: null,
    });
    // A never-retry answer: the case waits for a new card instead of planning a retry of this one.
    const planned = await w.db.sql`select 1 from payment_attempts where invoice_id = ${inv.id} and status = 'planned'`;
    expect(planned).toHaveLength(0);
    const [row] = await w.db.sql`select next_attempt_reason from dunning_cases where invoice_id = ${inv.id}`;
    expect(row!.next_attempt_reason).toMatch(/^awaiting customer: .*this card must never be retried/);
  });

  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;

  /** An expired card: Stripe's own first try, then two more, each at its own time. */
  async function failingThreeTimes(from: Date): Promise<{ invoiceId: string; times: Date[] }> {
    w.sandboxClock.set(from);
    const c = await w.sandbox.createCustomer({
      email: 'x@example.com',
      name: 'X',
      country: 'DE',
      timeZone: 'Europe/Berlin',
      card: { brand: 'visa', failure: 'expired_card', expMonth: 1, expYear: 2030 },
    });
    const inv = await w.sandbox.createFailingInvoice(c.id, { amount: 3_000, currency: 'eur', subscription: true });
    const times = [from, new Date(from.getTime() + DAY + 2 * HOUR), new Date(from.getTime() + 2 * DAY + 5 * HOUR)];
    for (const t of times.slice(1)) {
      w.sandboxClock.set(t);
      await w.sandbox
        .stripe()
        .invoices.pay(inv.id)
        .catch(() => undefined);
    }
    return { invoiceId: inv.id, times };
  }

  it("opens the case at Stripe's first failure, with each earlier try at its own time, so the window is not restarted", async () => {
    const start = new Date(w.clock.now());
    const { invoiceId, times } = await failingThreeTimes(start);
    // Imported five days later.
    w.clock.set(new Date(start.getTime() + 5 * DAY));
    try {
      await backfill({ sql: w.db.sql, gateway: w.deps.gateway, scheduler: w.deps, policy: w.policy });
      const [c] = await w.db
        .sql`select id, opened_at, next_attempt_reason from dunning_cases where invoice_id = ${invoiceId}`;
      expect(c!.opened_at).toEqual(times[0]);
      const tries = await w.db
        .sql`select attempt_no, source, started_at, decline_code, charge_id, failure_message from payment_attempts where invoice_id = ${invoiceId} order by attempt_no`;
      const charges = w.sandbox.charges(invoiceId);
      expect(tries.map((t) => [t.attempt_no, t.source, t.started_at, t.decline_code, t.charge_id])).toEqual(
        times.map((at, i) => [i + 1, 'stripe', at, 'expired_card', charges[i]!.id]),
      );
      expect(
        tries.every((t) => t.failure_message !== null && !String(t.failure_message).startsWith('recorded by backfill')),
      ).toBe(true);
      // The customer has until 28 days after the first failure, not after the import.
      expect(c!.next_attempt_reason).toMatch(
        /^awaiting customer: expired_card: .* until Tue 31 Mar 10:00 Europe\/Berlin$/,
      );
      const [deadline] = await w.db
        .sql`select data from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(c!.id)}`;
      expect(deadline!.data).toMatchObject({ kind: 'await', attemptsSeen: 3 });
    } finally {
      w.clock.set(start);
      w.sandboxClock.set(start);
    }
  });

  it('an invoice whose first failure is older than the dunning window gets takeoverDays from the import, not its final action at once', async () => {
    const start = new Date(w.clock.now());
    const { invoiceId } = await failingThreeTimes(new Date(start.getTime() - 30 * DAY));
    w.sandboxClock.set(start);
    await backfill({ sql: w.db.sql, gateway: w.deps.gateway, scheduler: w.deps, policy: w.policy });
    const [c] = await w.db
      .sql`select id, opened_at, window_starts_at, next_attempt_reason from dunning_cases where invoice_id = ${invoiceId}`;
    // Reports count it from its first failure; the window gives it the policy's 7 days from now.
    expect(c!.opened_at).toEqual(new Date(start.getTime() - 30 * DAY));
    expect(c!.window_starts_at).toEqual(new Date(start.getTime() + 7 * DAY - 28 * DAY));
    expect(c!.next_attempt_reason).toMatch(/^awaiting customer: expired_card: /);
    const [deadline] = await w.db
      .sql`select data, start_after from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(c!.id)}`;
    expect(deadline!.data).toMatchObject({ kind: 'await' });
    // The demo-capable clock maps the deadline to wall time; a few ms pass between the two readings.
    expect(
      Math.abs(deadline!.start_after.getTime() - w.clock.wallTimeOf(new Date(start.getTime() + 7 * DAY)).getTime()),
    ).toBeLessThan(1_000);
  });

  it('with retry.takeoverDays 0 such an invoice goes straight to the final action', async () => {
    const start = new Date(w.clock.now());
    const { invoiceId } = await failingThreeTimes(new Date(start.getTime() - 30 * DAY));
    w.sandboxClock.set(start);
    const policy = parsePolicy({ retry: { takeoverDays: 0 } });
    await backfill({
      sql: w.db.sql,
      gateway: w.deps.gateway,
      scheduler: { ...w.deps, policies: createPolicySource(policy) },
      policy,
    });
    const [c] = await w.db
      .sql`select id, window_starts_at, next_attempt_reason from dunning_cases where invoice_id = ${invoiceId}`;
    expect(c!.window_starts_at).toBeNull();
    expect(c!.next_attempt_reason).toMatch(/^stopping: dunning window of 28 days ended/);
    const [deadline] = await w.db
      .sql`select data from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(c!.id)}`;
    expect(deadline!.data).toMatchObject({ kind: 'stop' });
  });

  it('takes every failed charge, whoever made it, not attempt_count: 15 tries of one Visa card in 19 days plan no retry inside the 15-in-30-days limit', async () => {
    // Stripe, Invoice.attempt_count: "Any payment attempt counts as the first attempt, and
    // subsequently only automatic retries increment the attempt count. In other words, manual payment
    // attempts after the first attempt do not affect the retry schedule." The customer's own tries on
    // the hosted invoice page and a Dashboard user's leave it at 1; the card network counts them all.
    const start = new Date(w.clock.now());
    const first = new Date(start.getTime() - 19 * DAY);
    w.sandboxClock.set(first);
    const c = await w.sandbox.createCustomer({
      email: 'v@example.com',
      name: 'V',
      country: 'US',
      timeZone: 'America/New_York',
      card: { brand: 'visa', failure: 'generic_decline', expMonth: 1, expYear: 2030 },
    });
    const inv = await w.sandbox.createFailingInvoice(c.id, { amount: 4_000, currency: 'usd', subscription: true });
    for (let i = 1; i < 15; i += 1) {
      w.sandboxClock.set(new Date(first.getTime() + Math.round((i * 19 * DAY) / 14)));
      await w.sandbox.failedTry(inv.id, i % 3 === 0 ? 'dashboard' : 'hosted');
    }
    w.sandboxClock.set(start);
    try {
      expect((await w.sandbox.stripe().invoices.retrieve(inv.id)).attempt_count).toBe(1);
      await backfill({ sql: w.db.sql, gateway: w.deps.gateway, scheduler: w.deps, policy: w.policy });
      const tries = await w.db.sql`
        select started_at, charge_id, card_brand from payment_attempts
         where invoice_id = ${inv.id} and status = 'declined' order by started_at`;
      const charges = w.sandbox.charges(inv.id);
      expect(charges).toHaveLength(15);
      expect(tries.map((t) => [t.charge_id as string, (t.started_at as Date).getTime()])).toEqual(
        charges.map((ch) => [ch.id, ch.created * 1000]),
      );
      // The next try may come no earlier than 30 days after the first of the 15.
      const planned = await w.db
        .sql`select planned_at from payment_attempts where invoice_id = ${inv.id} and status = 'planned'`;
      for (const p of planned) {
        expect((p.planned_at as Date).getTime()).toBeGreaterThan(first.getTime() + 30 * DAY);
      }
    } finally {
      w.sandboxClock.set(start);
    }
  });

  it('reads every InvoicePayment of an invoice, past the first page: all their failed charges, and the latest answer', async () => {
    // Stripe: "When retrieving an invoice, there is an includable payments property containing the
    // first handful of those items. There is also a URL where you can retrieve the full (paginated)
    // list of payments."
    const start = new Date(w.clock.now());
    w.sandboxClock.set(new Date(start.getTime() - 3 * DAY));
    const c = await w.sandbox.createCustomer({
      email: 'p@example.com',
      name: 'P',
      country: 'US',
      card: { brand: 'visa', failure: 'generic_decline', expMonth: 1, expYear: 2030 },
    });
    const inv = await w.sandbox.createFailingInvoice(c.id, { amount: 1_500, currency: 'usd', subscription: true });
    for (let i = 1; i <= 11; i += 1) {
      w.sandboxClock.set(new Date(start.getTime() - 3 * DAY + i * HOUR));
      await w.sandbox.failedTry(inv.id, 'hosted', { newPayment: true });
    }
    // The customer's latest try, on another card, met a stolen-card answer: never retry that card.
    await w.sandbox.updateCard(c.id, { brand: 'visa', failure: 'stolen_card', expMonth: 1, expYear: 2031 });
    w.sandboxClock.set(new Date(start.getTime() - 2 * DAY));
    await w.sandbox.failedTry(inv.id, 'hosted', { newPayment: true });
    w.sandboxClock.set(start);
    const expanded = await w.sandbox.stripe().invoices.retrieve(inv.id, { expand: ['payments'] });
    expect(expanded.payments).toMatchObject({ has_more: true });
    expect(expanded.payments!.data).toHaveLength(10);

    await backfill({ sql: w.db.sql, gateway: w.deps.gateway, scheduler: w.deps, policy: w.policy });
    const tries = await w.db.sql`
      select charge_id, decline_code from payment_attempts where invoice_id = ${inv.id} and status = 'declined' order by started_at, attempt_no`;
    expect(tries.map((t) => t.charge_id as string)).toEqual(w.sandbox.charges(inv.id).map((ch) => ch.id));
    expect(tries).toHaveLength(13);
    expect(tries[12]!.decline_code).toBe('stolen_card');
    const [row] = await w.db.sql`select last_decline_code from dunning_cases where invoice_id = ${inv.id}`;
    expect(row!.last_decline_code).toBe('stolen_card');
    const planned = await w.db.sql`select 1 from payment_attempts where invoice_id = ${inv.id} and status = 'planned'`;
    expect(planned).toHaveLength(0);
  });

  it("falls back to the invoice's finalization when Stripe's charges cannot be read, and says so", async () => {
    const start = new Date(w.clock.now());
    const { invoiceId, times } = await failingThreeTimes(new Date(start.getTime() - 2 * DAY));
    w.sandboxClock.set(start);
    w.sandbox.inject({ kind: 'http_500', route: 'GET /v1/charges', times: 50 });
    try {
      await backfill({ sql: w.db.sql, gateway: w.deps.gateway, scheduler: w.deps, policy: w.policy });
    } finally {
      w.sandbox.clearFaults();
    }
    const [c] = await w.db.sql`select opened_at from dunning_cases where invoice_id = ${invoiceId}`;
    expect(c!.opened_at).toEqual(times[0]); // the sandbox finalizes and first charges in the same second
    const tries = await w.db
      .sql`select started_at, decline_code, failure_message from payment_attempts where invoice_id = ${invoiceId} order by attempt_no`;
    // Without the charges only `attempt_count` is known: the two manual tries did not move it.
    expect(tries).toHaveLength(1);
    for (const t of tries) {
      expect(t.started_at).toEqual(times[0]);
      expect(t.failure_message).toMatch(
        /^recorded by backfill: no failed charge found; time of the invoice's finalization/,
      );
    }
    // The PaymentIntent still tells the latest answer.
    expect(tries.map((t) => t.decline_code as string | null)).toEqual(['expired_card']);
  });
});
